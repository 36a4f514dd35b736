/* memstore/ingest.h — filling a store from users' files (`reveal ingest`): a bounded line
 * reader for JSONL and TSV, the parsing of one line into a KnowledgeItem, PNG/JPEG decoding
 * with an area-averaging resize, and the ingest loop that commits items in WriteBatches.
 * Included at the end of memstore.h, which stays the one public header of the store.
 *
 * Limits exist so that no input, however broken, makes the reader hold more than one line or
 * the decoder more than one bounded image in memory. docs/formats.md documents them.
 */
#ifndef MEMSTORE_INGEST_H
#define MEMSTORE_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memstore.h"

#define MEM_LINE_MAX           (1u << 20)  /* bytes in one input line, end of line excluded */
#define MEM_FIELD_MAX          (64u << 10) /* bytes in one text field, after JSON unescaping */
#define MEM_IMAGE_FILE_MAX     (32u << 20) /* bytes of one image file */
#define MEM_IMAGE_SIDE_MAX     8192u /* width or height of an image, checked before decoding */
#define MEM_IMAGE_SIZE_DEFAULT 32u   /* side of a new store's square images */
#define MEM_IMAGE_SIZE_MAX     1024u /* largest side a store may be created with */
#define MEM_MAX_ERRORS_DEFAULT 100u  /* bad lines tolerated before ingest stops */
#define MEM_BATCH_DEFAULT      1000u /* items per WriteBatch */

/* ---- line reader --------------------------------------------------------------------- */

typedef struct mem_reader mem_reader;

enum { MEM_LINE_EOF = 0, MEM_LINE_OK = 1, MEM_LINE_TOO_LONG = 2 };

/* Opens a file for reading line by line; lines longer than line_max bytes are skipped whole
 * and reported as MEM_LINE_TOO_LONG, so memory stays bounded by line_max. */
int mem_reader_open(const char *path, size_t line_max, mem_reader **out, char *err);
/* The same over an open stream, which the reader does not close (name is for messages). */
int mem_reader_from_stream(FILE *f, const char *name, size_t line_max, mem_reader **out, char *err);
/* Returns MEM_LINE_OK with the next line (end of line, a final '\r' and a leading UTF-8 BOM
 * removed; NUL-terminated, valid until the next call), MEM_LINE_TOO_LONG (no line),
 * MEM_LINE_EOF, or -1 on a read error. *lineno is the 1-based line number either way. */
int mem_reader_next(mem_reader *r, char **line, size_t *len, uint64_t *lineno, char *err);
/* Bytes consumed so far and the file's size (0 when unknown), for progress. */
uint64_t mem_reader_offset(const mem_reader *r);
uint64_t mem_reader_size(const mem_reader *r);
void mem_reader_close(mem_reader *r);

/* ---- one line → one item ------------------------------------------------------------- */

typedef enum { MEM_FORMAT_AUTO = 0, MEM_FORMAT_JSONL = 1, MEM_FORMAT_TSV = 2 } mem_format;

/* One parsed line. The item's strings point into `arena`, which the parser owns and reuses;
 * the item carries no image and no provenance yet (the ingest loop adds them). */
typedef struct {
    Reveal__KnowledgeItem item;
    const char *image; /* image path as written on the line, or NULL */
    char *arena;       /* decoded strings, NUL-terminated */
    size_t arena_cap, arena_used;
} mem_line_item;

void mem_line_item_init(mem_line_item *li);
void mem_line_item_free(mem_line_item *li);

/* Parses one line of the given format (JSONL or TSV; TSV only for KG_TRIPLE) into li.
 * Returns 1 for an item, 0 for a line that holds none (blank, or a TSV '#' comment), -1 with
 * the reason in `reason` (no file:line prefix). Checks: well-formed JSON object, required
 * fields present, strings, non-empty, at most field_max bytes, valid UTF-8, no NUL. Sets the
 * default logical key when the line gives none (docs/formats.md). */
int mem_parse_line(mem_line_item *li, Reveal__SourceType type, mem_format format, const char *line,
                   size_t len, size_t field_max, char *reason);

/* Names used on the command line and in messages: "image-text", "qa", "kg", "text". */
const char *mem_type_name(Reveal__SourceType type);
/* Returns 0 and the type for a name above, -1 for anything else. */
int mem_type_from_name(const char *name, Reveal__SourceType *type);

/* ---- images -------------------------------------------------------------------------- */

/* Decodes a PNG or JPEG held in memory and resizes it to size × size RGB with an
 * area-averaging filter (transparent pixels composited over white). Dimensions are checked
 * against MEM_IMAGE_SIDE_MAX before any pixel is decoded. pixels receives a malloc'ed
 * buffer of size*size*3 bytes. */
int mem_image_decode(const unsigned char *bytes, size_t n, uint32_t size, unsigned char **pixels,
                     char *err);
/* The same for a file (at most MEM_IMAGE_FILE_MAX bytes). */
int mem_image_load(const char *path, uint32_t size, unsigned char **pixels, char *err);
/* Area-averaging resize of 8-bit interleaved pixels: every output pixel is the mean of the
 * source area it covers, partial source pixels weighted by their covered fraction.
 * out: (oh, ow, ch)   in: (ih, iw, ch) */
int mem_image_resize_area(unsigned char *out, uint32_t ow, uint32_t oh, const unsigned char *in,
                          uint32_t iw, uint32_t ih, uint32_t ch, char *err);

/* ---- the ingest loop ----------------------------------------------------------------- */

typedef struct {
    uint64_t read;        /* lines that hold an item (blank lines and comments excluded) */
    uint64_t valid;       /* items that passed every check (and, unless a dry run, were put) */
    uint64_t added;       /* new items, counted once their batch committed */
    uint64_t unchanged;   /* items already stored with the same content: nothing written */
    uint64_t replaced;    /* items that replaced another under the same logical key */
    uint64_t rejected;    /* bad lines, each reported */
    uint64_t bytes_read;  /* of the input file */
    uint64_t bytes_total; /* the input file's size */
    uint64_t store_items; /* live items in the store at the end (0 on a dry run) */
    double seconds;       /* wall time so far */
} mem_ingest_counts;

typedef struct {
    Reveal__SourceType type;
    mem_format format; /* MEM_FORMAT_AUTO: TSV for a .tsv file, else JSONL */
    const char *input; /* the JSONL/TSV file; image paths are relative to its folder */
    const char *store_dir;
    const char *name;    /* NULL: the existing store's, or the type's name for a new one */
    uint32_t image_size; /* 0: the existing store's, or MEM_IMAGE_SIZE_DEFAULT */
    int dry_run;         /* parse, decode and validate everything, write nothing */
    uint64_t max_errors; /* stop once more lines than this were rejected */
    size_t batch;        /* items per WriteBatch (0: MEM_BATCH_DEFAULT) */
    size_t line_max;     /* 0: MEM_LINE_MAX */
    size_t field_max;    /* 0: MEM_FIELD_MAX */
    /* Called once per bad line with "file:line: reason". */
    void (*report)(void *ctx, const char *message);
    /* Called about once a second while reading. */
    void (*progress)(void *ctx, const mem_ingest_counts *counts);
    void *ctx;
} mem_ingest_options;

void mem_ingest_options_init(mem_ingest_options *o);

/* Reads the whole input into the store. Returns 0 when the input was read to its end with at
 * most max_errors bad lines; -1 when it stopped early (too many bad lines, a store or read
 * failure; err says which). Either way everything committed before the stop is durable and
 * the store is consistent, and *counts tells what happened. */
int mem_ingest(const mem_ingest_options *o, mem_ingest_counts *counts, char *err);

#endif
