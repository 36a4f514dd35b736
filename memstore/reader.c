/* memstore/reader.c — reading users' knowledge files: a line reader whose memory is bounded
 * by the longest allowed line, and the parsing of one JSONL or TSV line into a KnowledgeItem.
 *
 * Everything here treats its input as hostile: a line is never trusted to end, to be UTF-8,
 * to be JSON, or to hold the fields its type needs. Each failure gives one reason that names
 * the field and what is wrong with it, so `reveal ingest` can print `file:line: reason`.
 */
#define _POSIX_C_SOURCE 200809L
#include "memstore.h"
#include "rv.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_CHUNK (64u << 10)

struct mem_reader {
    FILE *f;
    int own_file;
    char name[256];
    size_t line_max;
    char *buf; /* line_max + 2 bytes: a whole line, its '\n', and a NUL */
    size_t cap;
    size_t start;   /* first unconsumed byte in buf */
    size_t end;     /* one past the last valid byte in buf */
    size_t scanned; /* bytes from start already searched for '\n' */
    int eof;
    uint64_t lineno;
    uint64_t offset; /* bytes of the file consumed as lines */
    uint64_t size;
};

int mem_reader_from_stream(FILE *f, const char *name, size_t line_max, mem_reader **out,
                           char *err) {
    *out = NULL;
    if (line_max == 0) return rv_fail(err, "%s: line limit must be positive", name);
    mem_reader *r = calloc(1, sizeof *r);
    if (!r) return rv_fail(err, "%s: out of memory", name);
    r->cap = line_max + 2;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        free(r);
        return rv_fail(err, "%s: out of memory for a %zu-byte line buffer", name, line_max);
    }
    r->f = f;
    r->line_max = line_max;
    snprintf(r->name, sizeof r->name, "%s", name);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) r->size = (uint64_t)st.st_size;
    *out = r;
    return 0;
}

int mem_reader_open(const char *path, size_t line_max, mem_reader **out, char *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return rv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return rv_fail(err, "%s: is a directory, not a file", path);
    }
    if (mem_reader_from_stream(f, path, line_max, out, err) != 0) {
        fclose(f);
        return -1;
    }
    (*out)->own_file = 1;
    return 0;
}

void mem_reader_close(mem_reader *r) {
    if (!r) return;
    if (r->own_file) fclose(r->f);
    free(r->buf);
    free(r);
}

uint64_t mem_reader_offset(const mem_reader *r) {
    return r->offset;
}

uint64_t mem_reader_size(const mem_reader *r) {
    return r->size;
}

/* Appends file bytes after `end`, first moving the unconsumed tail to the buffer's start.
 * Returns the bytes read (0 at end of file) or -1. */
static long reader_fill(mem_reader *r, char *err) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    size_t room = r->cap - 1 - r->end;
    if (room > READ_CHUNK) room = READ_CHUNK;
    size_t got = fread(r->buf + r->end, 1, room, r->f);
    if (got == 0) {
        if (ferror(r->f)) return rv_fail(err, "%s: read failed: %s", r->name, strerror(errno));
        r->eof = 1;
    }
    r->end += got;
    return (long)got;
}

/* Throws away the rest of a too-long line, up to and including its '\n'. */
static int reader_skip_line(mem_reader *r, char *err) {
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            size_t used = (size_t)(nl + 1 - (r->buf + r->start));
            r->offset += used;
            r->start += used;
            r->scanned = 0;
            return 0;
        }
        r->offset += r->end - r->start;
        r->start = r->end = r->scanned = 0;
        if (r->eof) return 0;
        if (reader_fill(r, err) < 0) return -1;
    }
}

int mem_reader_next(mem_reader *r, char **line, size_t *len, uint64_t *lineno, char *err) {
    *line = NULL;
    *len = 0;
    for (;;) {
        char *from = r->buf + r->start + r->scanned;
        char *nl = memchr(from, '\n', r->end - r->start - r->scanned);
        size_t n;
        if (nl) {
            n = (size_t)(nl - (r->buf + r->start));
        } else {
            r->scanned = r->end - r->start;
            if (r->scanned > r->line_max) {
                *lineno = ++r->lineno;
                if (reader_skip_line(r, err) != 0) return -1;
                return MEM_LINE_TOO_LONG;
            }
            if (!r->eof) {
                if (reader_fill(r, err) < 0) return -1;
                continue;
            }
            if (r->start == r->end) {
                *lineno = r->lineno;
                return MEM_LINE_EOF;
            }
            n = r->end - r->start; /* a last line without '\n' */
        }
        *lineno = ++r->lineno;
        if (n > r->line_max) {
            r->offset += n + (nl != NULL);
            r->start += n + (nl != NULL);
            r->scanned = 0;
            return MEM_LINE_TOO_LONG;
        }
        char *s = r->buf + r->start;
        r->offset += n + (nl != NULL);
        r->start += n + (nl != NULL);
        r->scanned = 0;
        s[n] = 0; /* the '\n', or the spare byte past the data at end of file */
        if (n > 0 && s[n - 1] == '\r') s[--n] = 0;
        if (r->lineno == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
            s += 3;
            n -= 3;
        }
        *line = s;
        *len = n;
        return MEM_LINE_OK;
    }
}

/* ---- types ---------------------------------------------------------------------------- */

static const struct {
    Reveal__SourceType type;
    const char *name;
} type_names[] = {
    {REVEAL__SOURCE_TYPE__IMAGE_TEXT, "image-text"},
    {REVEAL__SOURCE_TYPE__QA, "qa"},
    {REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg"},
    {REVEAL__SOURCE_TYPE__TEXT, "text"},
};

const char *mem_type_name(Reveal__SourceType type) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == type) return type_names[i].name;
    return "unknown";
}

int mem_type_from_name(const char *name, Reveal__SourceType *type) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (!strcmp(type_names[i].name, name)) {
            *type = type_names[i].type;
            return 0;
        }
    return -1;
}

/* ---- one line → one item -------------------------------------------------------------- */

void mem_line_item_init(mem_line_item *li) {
    memset(li, 0, sizeof *li);
    reveal__knowledge_item__init(&li->item);
}

void mem_line_item_free(mem_line_item *li) {
    free(li->arena);
    mem_line_item_init(li);
}

/* The fields a line may carry, where each goes in the item, and which types require it. */
typedef struct {
    const char *name;
    size_t offset;     /* of the char * member in Reveal__KnowledgeItem; SIZE_MAX for "image" */
    unsigned required; /* bit (1 << type) for each type that needs the field */
    unsigned allowed;
} field_spec;

#define T(t)        (1u << REVEAL__SOURCE_TYPE__##t)
#define ALL_TYPES   (T(IMAGE_TEXT) | T(QA) | T(KG_TRIPLE) | T(TEXT))
#define FIELD(m)    offsetof(Reveal__KnowledgeItem, m)
#define IMAGE_FIELD SIZE_MAX

static const field_spec fields[] = {
    {"image", IMAGE_FIELD, T(IMAGE_TEXT), ALL_TYPES},
    {"key", FIELD(key), 0, ALL_TYPES},
    {"text", FIELD(text), T(IMAGE_TEXT) | T(TEXT), T(IMAGE_TEXT) | T(TEXT)},
    {"title", FIELD(title), 0, T(TEXT)},
    {"question", FIELD(question), T(QA), T(QA)},
    {"answer", FIELD(answer), T(QA), T(QA)},
    {"subject", FIELD(subject), T(KG_TRIPLE), T(KG_TRIPLE)},
    {"relation", FIELD(relation), T(KG_TRIPLE), T(KG_TRIPLE)},
    {"object", FIELD(object), T(KG_TRIPLE), T(KG_TRIPLE)},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static char **item_string(Reveal__KnowledgeItem *item, const field_spec *f) {
    return (char **)((char *)item + f->offset);
}

/* Room for every decoded string of a line (together never longer than the line, NULs
 * included, since each string had two quotes or a tab) and a default key built from two. */
static int arena_reserve(mem_line_item *li, size_t need, char *reason) {
    if (li->arena_cap >= need) return 0;
    char *a = realloc(li->arena, need);
    if (!a) return rv_fail(reason, "out of memory for a %zu-byte line", need);
    li->arena = a;
    li->arena_cap = need;
    return 0;
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

/* cJSON turns the escape \u0000 into a NUL that silently cuts the string short; find it in
 * the raw line instead (outside strings a backslash cannot occur in valid JSON). */
static int has_escaped_nul(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < n && !memcmp(s + i + 2, "0000", 4)) return 1;
        i++; /* skip the escaped character, so "\\u0000" (a backslash, then text) passes */
    }
    return 0;
}

/* Checks one decoded text field: non-empty, within the size limit, UTF-8. */
static int check_text(const char *name, const char *s, size_t n, size_t field_max, char *reason) {
    size_t bad;
    if (n == 0) return rv_fail(reason, "field \"%s\" is empty", name);
    if (n > field_max)
        return rv_fail(reason, "field \"%s\" is %zu bytes, more than the %zu allowed", name, n,
                       field_max);
    if (!rv_utf8_valid(s, n, &bad))
        return rv_fail(reason, "field \"%s\" is not valid UTF-8 (byte %zu)", name, bad);
    return 0;
}

/* A field of a default key must not contain the tab that separates the key's parts. */
static int check_key_part(const char *name, const char *s, char *reason) {
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20)
            return rv_fail(reason, "field \"%s\" contains a control character (code %d)", name, *p);
    return 0;
}

static char *arena_put(mem_line_item *li, const char *s, size_t n) {
    char *dst = li->arena + li->arena_used;
    memcpy(dst, s, n);
    dst[n] = 0;
    li->arena_used += n + 1;
    return dst;
}

static int parse_jsonl(mem_line_item *li, Reveal__SourceType type, const char *line, size_t len,
                       size_t field_max, char *reason) {
    int rc = -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - line) : 0;
        rv_fail(reason, "malformed JSON at byte %zu", at + 1);
        goto cleanup;
    }
    for (const char *p = end; p < line + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r') {
            rv_fail(reason, "malformed JSON: text after the object at byte %zu",
                    (size_t)(p - line) + 1);
            goto cleanup;
        }
    if (!cJSON_IsObject(root)) {
        rv_fail(reason, "expected a JSON object, got %s", json_type_name(root));
        goto cleanup;
    }
    if (has_escaped_nul(line, len)) {
        rv_fail(reason, "a string contains the escape \\u0000 (NUL)");
        goto cleanup;
    }
    if (arena_reserve(li, 2 * len + 16, reason) != 0) goto cleanup;
    unsigned type_bit = 1u << type;
    const cJSON *seen[N_FIELDS] = {0};
    for (const cJSON *v = root->child; v; v = v->next) {
        const field_spec *f = NULL;
        for (size_t i = 0; i < N_FIELDS; i++)
            if (v->string && !strcmp(v->string, fields[i].name) && (fields[i].allowed & type_bit))
                f = &fields[i];
        if (!f) continue; /* fields of other types and users' own fields are ignored */
        if (seen[f - fields]) {
            rv_fail(reason, "field \"%s\" appears twice", f->name);
            goto cleanup;
        }
        seen[f - fields] = v;
        if (!cJSON_IsString(v)) {
            rv_fail(reason, "field \"%s\" must be a string, not %s", f->name, json_type_name(v));
            goto cleanup;
        }
        size_t n = strlen(v->valuestring);
        if (check_text(f->name, v->valuestring, n, field_max, reason) != 0) goto cleanup;
        char *s = arena_put(li, v->valuestring, n);
        if (f->offset == IMAGE_FIELD)
            li->image = s;
        else
            *item_string(&li->item, f) = s;
    }
    for (size_t i = 0; i < N_FIELDS; i++)
        if ((fields[i].required & type_bit) && !seen[i]) {
            rv_fail(reason, "missing field \"%s\" (a %s item needs it)", fields[i].name,
                    mem_type_name(type));
            goto cleanup;
        }
    rc = 1;
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int parse_tsv(mem_line_item *li, const char *line, size_t len, size_t field_max,
                     char *reason) {
    static const char *names[3] = {"subject", "relation", "object"};
    if (len == 0 || line[0] == '#') return 0;
    if (arena_reserve(li, 2 * len + 16, reason) != 0) return -1;
    const char *part[3];
    size_t part_len[3], count = 0;
    const char *p = line, *stop = line + len;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(stop - p));
        const char *e = tab ? tab : stop;
        if (count < 3) {
            part[count] = p;
            part_len[count] = (size_t)(e - p);
        }
        count++;
        if (!tab) break;
        p = tab + 1;
    }
    if (count != 3)
        return rv_fail(reason,
                       "expected 3 tab-separated fields (subject, relation, object), "
                       "found %zu",
                       count);
    char **dst[3] = {&li->item.subject, &li->item.relation, &li->item.object};
    for (int i = 0; i < 3; i++) {
        if (check_text(names[i], part[i], part_len[i], field_max, reason) != 0) return -1;
        *dst[i] = arena_put(li, part[i], part_len[i]);
    }
    return 1;
}

/* The logical key an item gets when its line names none (docs/formats.md). Text items
 * without a title get none: they can be added and removed, not edited. */
static int default_key(mem_line_item *li, Reveal__SourceType type, char *reason) {
    Reveal__KnowledgeItem *it = &li->item;
    if (it->key && it->key[0]) return 0;
    const char *a = NULL, *b = NULL;
    switch (type) {
    case REVEAL__SOURCE_TYPE__KG_TRIPLE:
        if (check_key_part("subject", it->subject, reason) != 0 ||
            check_key_part("relation", it->relation, reason) != 0)
            return -1;
        a = it->subject;
        b = it->relation;
        break;
    case REVEAL__SOURCE_TYPE__QA:
        a = it->question;
        break;
    case REVEAL__SOURCE_TYPE__IMAGE_TEXT:
        a = li->image;
        break;
    case REVEAL__SOURCE_TYPE__TEXT:
        a = it->title && it->title[0] ? it->title : NULL;
        break;
    default:
        break;
    }
    if (!a) return 0;
    if (!b) {
        it->key = (char *)a;
        return 0;
    }
    /* Both parts were copied into the arena, which was sized to hold them once more. */
    size_t na = strlen(a), nb = strlen(b);
    char *k = arena_put(li, a, na);
    k[na] = '\t';
    memcpy(k + na + 1, b, nb);
    k[na + 1 + nb] = 0;
    li->arena_used += nb + 1;
    it->key = k;
    return 0;
}

int mem_parse_line(mem_line_item *li, Reveal__SourceType type, mem_format format, const char *line,
                   size_t len, size_t field_max, char *reason) {
    reveal__knowledge_item__init(&li->item);
    li->image = NULL;
    li->arena_used = 0;
    li->item.type = type;
    if (type < REVEAL__SOURCE_TYPE__IMAGE_TEXT || type > REVEAL__SOURCE_TYPE__TEXT)
        return rv_fail(reason, "unknown item type %d", (int)type);
    if (memchr(line, 0, len)) return rv_fail(reason, "line contains a NUL byte");
    size_t bad;
    if (!rv_utf8_valid(line, len, &bad))
        return rv_fail(reason, "line is not valid UTF-8 (byte %zu)", bad + 1);
    int rc;
    if (format == MEM_FORMAT_TSV) {
        if (type != REVEAL__SOURCE_TYPE__KG_TRIPLE)
            return rv_fail(reason, "TSV input holds kg triples only, not %s items",
                           mem_type_name(type));
        rc = parse_tsv(li, line, len, field_max, reason);
    } else {
        size_t i = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) return 0;
        rc = parse_jsonl(li, type, line, len, field_max, reason);
    }
    if (rc != 1) return rc;
    return default_key(li, type, reason) == 0 ? 1 : -1;
}
