/* tests/test_store_reader.c — the line reader and the parsing of one line into an item.
 * Reader: line ends (LF, CRLF, none at the end), a BOM, lines of exactly the limit and one
 * byte more, too-long lines across read chunks, line numbers after skipped lines.
 * Parser: every type in JSONL, kg in TSV, default keys, and each way a line can be bad with
 * the reason it must give. */
#include "check.h"
#include "memstore.h"
#include "rv.h"

#include <string.h>

/* Reads all of `data` through a reader with the given limit; returns a "|"-joined transcript
 * of lines ("L<n>:<text>" or "L<n>:TOO_LONG") for compact checks. */
static void transcript(const char *data, size_t n, size_t line_max, char *out, size_t cap) {
    FILE *f = tmpfile();
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, n, f) == n);
    rewind(f);
    mem_reader *r;
    char err[RV_ERR_MAX];
    REQUIRE(mem_reader_from_stream(f, "mem", line_max, &r, err) == 0);
    out[0] = 0;
    size_t used = 0;
    for (;;) {
        char *line;
        size_t len;
        uint64_t no;
        int got = mem_reader_next(r, &line, &len, &no, err);
        REQUIRE(got >= 0);
        if (got == MEM_LINE_EOF) break;
        CHECK(got == MEM_LINE_TOO_LONG || strlen(line) == len);
        if (got == MEM_LINE_OK)
            used += (size_t)snprintf(out + used, cap - used, "L%llu:%.*s|", (unsigned long long)no,
                                     (int)(len > 40 ? 40 : len), line);
        else
            used +=
                (size_t)snprintf(out + used, cap - used, "L%llu:TOO_LONG|", (unsigned long long)no);
        REQUIRE(used < cap);
    }
    CHECK(mem_reader_offset(r) == n);
    mem_reader_close(r);
    fclose(f);
}

static void test_reader_basic(void) {
    char t[4096];
    const char in1[] = "a\nbb\r\n\nccc";
    transcript(in1, sizeof in1 - 1, 100, t, sizeof t);
    CHECKF(!strcmp(t, "L1:a|L2:bb|L3:|L4:ccc|"), "got %s", t);
    const char in2[] = "\xEF\xBB\xBFx\n\xEF\xBB\xBFy\n";
    transcript(in2, sizeof in2 - 1, 100, t, sizeof t);
    CHECKF(!strcmp(t, "L1:x|L2:\xEF\xBB\xBFy|"), "BOM only stripped on line 1, got %s", t);
    transcript("", 0, 100, t, sizeof t);
    CHECKF(!strcmp(t, ""), "empty file, got %s", t);
    transcript("\n", 1, 100, t, sizeof t);
    CHECKF(!strcmp(t, "L1:|"), "got %s", t);
}

static void test_reader_limits(void) {
    char t[4096];
    /* Exactly 5 bytes passes, 6 does not, with and without a final newline or '\r'. */
    const char in1[] = "12345\n123456\nok\n12345";
    transcript(in1, sizeof in1 - 1, 5, t, sizeof t);
    CHECKF(!strcmp(t, "L1:12345|L2:TOO_LONG|L3:ok|L4:12345|"), "got %s", t);
    const char in2[] = "ok\n123456";
    transcript(in2, sizeof in2 - 1, 5, t, sizeof t);
    CHECKF(!strcmp(t, "L1:ok|L2:TOO_LONG|"), "got %s", t);
    /* A '\r' before '\n' counts toward the limit (it is part of the raw line). */
    const char in3[] = "12345\r\nx";
    transcript(in3, sizeof in3 - 1, 5, t, sizeof t);
    CHECKF(!strcmp(t, "L1:TOO_LONG|L2:x|"), "got %s", t);

    /* Lines spanning several 64 KiB reads, one too long by far (1 MB), one just fitting. */
    size_t big = 1000000, fit = 200000;
    size_t n = big + 1 + fit + 1 + 3;
    char *data = malloc(n);
    REQUIRE(data != NULL);
    memset(data, 'a', big);
    data[big] = '\n';
    memset(data + big + 1, 'b', fit);
    data[big + 1 + fit] = '\n';
    memcpy(data + big + fit + 2, "end", 3);
    transcript(data, n, fit, t, sizeof t);
    CHECKF(!strncmp(t, "L1:TOO_LONG|L2:bbbb", 19) && strstr(t, "|L3:end|"), "got %s", t);
    transcript(data, n, fit - 1, t, sizeof t);
    CHECKF(!strcmp(t, "L1:TOO_LONG|L2:TOO_LONG|L3:end|"), "got %s", t);
    free(data);
}

/* Parses one line and returns its outcome; reason holds the message on failure. */
static int parse(mem_line_item *li, Reveal__SourceType type, mem_format fmt, const char *line,
                 char *reason) {
    reason[0] = 0;
    return mem_parse_line(li, type, fmt, line, strlen(line), MEM_FIELD_MAX, reason);
}

#define KG  REVEAL__SOURCE_TYPE__KG_TRIPLE
#define QA  REVEAL__SOURCE_TYPE__QA
#define IT  REVEAL__SOURCE_TYPE__IMAGE_TEXT
#define TX  REVEAL__SOURCE_TYPE__TEXT
#define JL  MEM_FORMAT_JSONL
#define TSV MEM_FORMAT_TSV

static void test_parse_good(void) {
    mem_line_item li;
    char why[RV_ERR_MAX];
    mem_line_item_init(&li);

    CHECK(parse(&li, KG, JL,
                "{\"subject\":\"Nepal\",\"relation\":\"capital\",\"object\":"
                "\"Kathmandu\",\"source\":7}",
                why) == 1);
    CHECK(li.item.type == KG && !strcmp(li.item.subject, "Nepal") &&
          !strcmp(li.item.relation, "capital") && !strcmp(li.item.object, "Kathmandu"));
    CHECKF(!strcmp(li.item.key, "Nepal\tcapital"), "default kg key, got '%s'", li.item.key);
    CHECK(li.image == NULL);

    CHECK(parse(&li, KG, TSV, "Nepal\tcapital\tKathmandu", why) == 1);
    CHECK(!strcmp(li.item.object, "Kathmandu") && !strcmp(li.item.key, "Nepal\tcapital"));
    CHECK(parse(&li, KG, TSV, "# a comment", why) == 0);
    CHECK(parse(&li, KG, TSV, "", why) == 0);
    CHECK(parse(&li, KG, JL, "   ", why) == 0);

    CHECK(parse(&li, QA, JL,
                "{\"question\":\"What is the capital of Nepal?\",\"answer\":"
                "\"Kathmandu\",\"image\":\"img/np.png\"}",
                why) == 1);
    CHECK(!strcmp(li.item.key, "What is the capital of Nepal?"));
    CHECK(li.image && !strcmp(li.image, "img/np.png"));

    CHECK(parse(&li, IT, JL, "{\"image\":\"img/np.png\",\"text\":\"flag of Nepal\"}", why) == 1);
    CHECK(!strcmp(li.item.key, "img/np.png") && !strcmp(li.item.text, "flag of Nepal"));

    /* Unicode, both raw and as \u escapes (with a surrogate pair), and an explicit key. */
    CHECK(parse(&li, TX, JL,
                "{\"title\":\"Nepal \\u2014 Climate\",\"text\":\"Himalaya "
                "\xE0\xA4\xB9\xE0\xA4\xBF \\ud83c\\udfd4\",\"key\":\"np-climate\"}",
                why) == 1);
    CHECK(!strcmp(li.item.title, "Nepal \xE2\x80\x94 Climate"));
    CHECK(!strcmp(li.item.text, "Himalaya \xE0\xA4\xB9\xE0\xA4\xBF \xF0\x9F\x8F\x94"));
    CHECK(!strcmp(li.item.key, "np-climate"));
    /* A text without a title has no default key. */
    CHECK(parse(&li, TX, JL, "{\"text\":\"just a passage\"}", why) == 1);
    CHECK(li.item.key == NULL || li.item.key[0] == 0);
    /* "\\u0000" is a backslash followed by text, not a NUL. */
    CHECK(parse(&li, TX, JL, "{\"text\":\"C:\\\\u0000\"}", why) == 1);
    CHECK(!strcmp(li.item.text, "C:\\u0000"));
    mem_line_item_free(&li);
}

/* Each bad line must fail with a reason containing `expect`. */
static void bad(Reveal__SourceType type, mem_format fmt, const char *line, const char *expect) {
    mem_line_item li;
    char why[RV_ERR_MAX];
    mem_line_item_init(&li);
    int rc = parse(&li, type, fmt, line, why);
    CHECKF(rc == -1 && strstr(why, expect), "line %s: rc %d, reason '%s', expected '%s'", line, rc,
           why, expect);
    mem_line_item_free(&li);
}

static void test_parse_bad(void) {
    bad(KG, JL, "{\"subject\":\"a\",\"relation\":\"b\",\"object\":\"c\"", "malformed JSON");
    bad(KG, JL, "{\"subject\":\"a\",}", "malformed JSON");
    bad(KG, JL, "{\"subject\":\"a\",\"relation\":\"b\",\"object\":\"c\"} x",
        "text after the object");
    bad(KG, JL, "[1,2]", "expected a JSON object, got an array");
    bad(KG, JL, "\"s\"", "expected a JSON object, got a string");
    bad(KG, JL, "{\"subject\":\"a\",\"relation\":\"b\"}", "missing field \"object\"");
    bad(QA, JL, "{\"question\":\"q\"}", "missing field \"answer\"");
    bad(IT, JL, "{\"text\":\"t\"}", "missing field \"image\"");
    bad(TX, JL, "{\"title\":\"t\"}", "missing field \"text\"");
    bad(QA, JL, "{\"question\":\"q\",\"answer\":42}",
        "field \"answer\" must be a string, not a number");
    bad(QA, JL, "{\"question\":null,\"answer\":\"a\"}",
        "field \"question\" must be a string, not null");
    bad(KG, JL, "{\"subject\":[\"a\"],\"relation\":\"b\",\"object\":\"c\"}",
        "field \"subject\" must be a string, not an array");
    bad(QA, JL, "{\"question\":\"q\",\"answer\":\"a\",\"key\":true}",
        "field \"key\" must be a string, not a boolean");
    bad(QA, JL, "{\"question\":\"q\",\"answer\":\"a\",\"answer\":\"b\"}",
        "field \"answer\" appears twice");
    bad(QA, JL, "{\"question\":\"\",\"answer\":\"a\"}", "field \"question\" is empty");
    bad(QA, JL, "{\"question\":\"a\\u0000b\",\"answer\":\"a\"}", "\\u0000");
    bad(QA, JL, "{\"question\":\"caf\xC3\",\"answer\":\"a\"}", "not valid UTF-8 (byte 17)");
    bad(QA, JL, "{\"question\":\"\xED\xA0\x80\",\"answer\":\"a\"}", "not valid UTF-8");
    bad(QA, JL, "{\"question\":\"\\ud800\",\"answer\":\"a\"}", "malformed JSON");
    bad(KG, JL, "{\"subject\":\"a\\tb\",\"relation\":\"r\",\"object\":\"o\"}",
        "field \"subject\" contains a control character");
    bad(KG, TSV, "a\tb", "expected 3 tab-separated fields (subject, relation, object), found 2");
    bad(KG, TSV, "a\tb\tc\td", "found 4");
    bad(KG, TSV, "a\t\tc", "field \"relation\" is empty");
    bad(KG, TSV, "a\xFF\tb\tc", "not valid UTF-8 (byte 2)");
    bad(QA, TSV, "a\tb\tc", "TSV input holds kg triples only");
    bad(REVEAL__SOURCE_TYPE__SOURCE_TYPE_UNSPECIFIED, JL, "{}", "unknown item type");

    /* The field limit applies to decoded bytes; a NUL byte in the raw line is refused. */
    mem_line_item li;
    char why[RV_ERR_MAX];
    mem_line_item_init(&li);
    const char *l = "{\"question\":\"12345678\",\"answer\":\"a\"}";
    CHECK(mem_parse_line(&li, QA, JL, l, strlen(l), 8, why) == 1);
    CHECK(mem_parse_line(&li, QA, JL, l, strlen(l), 7, why) == -1 &&
          strstr(why, "field \"question\" is 8 bytes, more than the 7 allowed"));
    const char nul[] = "{\"question\":\"a\0b\",\"answer\":\"a\"}";
    CHECK(mem_parse_line(&li, QA, JL, nul, sizeof nul - 1, 100, why) == -1 &&
          strstr(why, "NUL byte"));
    mem_line_item_free(&li);
}

static void test_type_names(void) {
    const char *names[] = {"image-text", "qa", "kg", "text"};
    for (int i = 0; i < 4; i++) {
        Reveal__SourceType t;
        CHECK(mem_type_from_name(names[i], &t) == 0 && !strcmp(mem_type_name(t), names[i]));
    }
    Reveal__SourceType t;
    CHECK(mem_type_from_name("triples", &t) == -1);
    CHECK(mem_type_from_name("", &t) == -1);
}

int main(void) {
    test_reader_basic();
    test_reader_limits();
    test_parse_good();
    test_parse_bad();
    test_type_names();
    return check_report("store_reader");
}
