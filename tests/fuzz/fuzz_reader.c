/* tests/fuzz/fuzz_reader.c — libFuzzer target for the input side of `reveal ingest`: the
 * bounded line reader and the parsing of each line into a KnowledgeItem.
 *
 * The first byte picks the item type, the format (JSONL or TSV) and small line and field limits
 * (so the too-long paths are reached); the rest is the file. Beyond "no crash, no sanitizer
 * report", every line and every accepted item must keep the promises ingest relies on:
 *   - lines come in order, NUL-terminated, never longer than the limit, and the reader ends
 *     having consumed exactly the input;
 *   - an accepted item has its type's fields, each non-empty, within the field limit, UTF-8
 *     without NUL, its default key where one is due, and passes the store's own item check
 *     (rv_item_check): a line the parser accepts is never refused later for its text;
 *   - a refused line always comes with a reason.
 * A broken promise aborts, which libFuzzer and the replay report as a failure. */
#define _GNU_SOURCE
#include "memstore.h"
#include "proto.h"
#include "rv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMISE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_reader: broken promise: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_text(const char *s, size_t field_max) {
    PROMISE(s != NULL);
    size_t n = strlen(s), bad;
    PROMISE(n > 0 && n <= field_max);
    PROMISE(rv_utf8_valid(s, n, &bad));
}

static void check_item(mem_line_item *li, Reveal__SourceType type, size_t field_max) {
    Reveal__KnowledgeItem *it = &li->item;
    PROMISE(it->type == type);
    switch (type) {
    case REVEAL__SOURCE_TYPE__KG_TRIPLE:
        check_text(it->subject, field_max);
        check_text(it->relation, field_max);
        check_text(it->object, field_max);
        break;
    case REVEAL__SOURCE_TYPE__QA:
        check_text(it->question, field_max);
        check_text(it->answer, field_max);
        break;
    case REVEAL__SOURCE_TYPE__IMAGE_TEXT:
        check_text(it->text, field_max);
        check_text(li->image, field_max);
        break;
    default:
        check_text(it->text, field_max);
        break;
    }
    if (li->image) check_text(li->image, field_max);
    /* A default key is due for every type except an untitled text. */
    int untitled = type == REVEAL__SOURCE_TYPE__TEXT && !(it->title && it->title[0]);
    if (!untitled || (it->key && it->key[0])) PROMISE(it->key && it->key[0]);
    /* The ingest loop attaches the decoded image; a stand-in takes its place here. */
    uint8_t pixels[2 * 2 * 3] = {0};
    Reveal__Image image = REVEAL__IMAGE__INIT;
    image.width = image.height = 2;
    image.channels = 3;
    image.pixels.data = pixels;
    image.pixels.len = sizeof pixels;
    if (li->image) it->image = &image;
    char err[RV_ERR_MAX];
    int refused = rv_item_check(it, err);
    it->image = NULL;
    if (refused) {
        fprintf(stderr, "fuzz_reader: the parser accepted an item the store refuses: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t pick = data[0];
    Reveal__SourceType type = (Reveal__SourceType)(1 + (pick & 3));
    mem_format format = (pick & 4) ? MEM_FORMAT_TSV : MEM_FORMAT_JSONL;
    size_t line_max = (pick & 8) ? 64 : 4096;
    size_t field_max = (pick & 16) ? 8 : 1024;
    FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
    if (!f) return 0;
    mem_reader *r;
    char err[RV_ERR_MAX];
    PROMISE(mem_reader_from_stream(f, "fuzz", line_max, &r, err) == 0);
    mem_line_item li;
    mem_line_item_init(&li);
    uint64_t expect_no = 1;
    for (;;) {
        char *line;
        size_t len;
        uint64_t no;
        int got = mem_reader_next(r, &line, &len, &no, err);
        PROMISE(got >= 0);
        if (got == MEM_LINE_EOF) break;
        PROMISE(no == expect_no);
        expect_no++;
        if (got == MEM_LINE_TOO_LONG) continue;
        PROMISE(len <= line_max && line[len] == 0);
        char reason[RV_ERR_MAX] = "";
        int rc = mem_parse_line(&li, type, format, line, len, field_max, reason);
        PROMISE(rc >= -1 && rc <= 1);
        if (rc < 0) PROMISE(reason[0] != 0);
        if (rc == 1) check_item(&li, type, field_max);
    }
    PROMISE(mem_reader_offset(r) == size - 1);
    mem_line_item_free(&li);
    mem_reader_close(r);
    fclose(f);
    return 0;
}
