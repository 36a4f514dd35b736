/* training/ckpt.c — checkpoint writer (streamed, hashed, atomic) and verifying reader (mmap). */
#define _GNU_SOURCE
#include "ckpt.h"

#include "rv.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints are little-endian and written as raw memory: port the writer and reader first"
#endif

static const char CKPT_MAGIC[8] = {'R', 'E', 'V', 'E', 'A', 'L', 'C', 'K'};
#define HEADER_SIZE 64
#define RESERVED_AT 32 /* header bytes from here on are zero in format version 1 */

/* Header layout (byte offsets): magic 0, version 8 (u32), header size 12 (u32), payload size 16
 * (u64), payload XXH3 24 (u64), reserved zeros 32..63. */
typedef struct {
    uint32_t version;
    uint32_t header_size;
    uint64_t payload_size;
    uint64_t payload_hash;
} ckpt_header;

static void header_encode(unsigned char *out, const ckpt_header *h) {
    memset(out, 0, HEADER_SIZE);
    memcpy(out, CKPT_MAGIC, 8);
    memcpy(out + 8, &h->version, 4);
    memcpy(out + 12, &h->header_size, 4);
    memcpy(out + 16, &h->payload_size, 8);
    memcpy(out + 24, &h->payload_hash, 8);
}

/* ---- writer ---------------------------------------------------------------------------- */

/* A buffered file writer that hashes every payload byte it writes. */
typedef struct {
    FILE *f;
    XXH3_state_t *hash;
    uint64_t written;
    int failed;
} ckpt_writer;

static void put(ckpt_writer *w, const void *data, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(data, 1, n, w->f) != n) {
        w->failed = errno ? errno : EIO;
        return;
    }
    XXH3_64bits_update(w->hash, data, n);
    w->written += n;
}

static void put_u32(ckpt_writer *w, uint32_t x) {
    put(w, &x, 4);
}

static void put_u64(ckpt_writer *w, uint64_t x) {
    put(w, &x, 8);
}

static void put_blob(ckpt_writer *w, const void *data, size_t n) {
    put_u64(w, n);
    put(w, data, n);
}

/* Each buffer is written tensor by tensor, skipping the in-memory alignment gaps, so the file
 * does not depend on the alignment policy. */
static void put_buffer(ckpt_writer *w, const trn_params *p, const float *buf) {
    for (int i = 0; i < p->n; i++) put(w, buf + p->offset[i], p->numel[i] * sizeof(float));
}

static void write_payload(ckpt_writer *w, const trn_params *p, const trn_ckpt_meta *meta) {
    put_u64(w, meta->step);
    put_blob(w, meta->config, meta->config_len);
    put_blob(w, meta->tokenizer, meta->tokenizer_len);
    put_blob(w, meta->state, meta->state_len);
    put_u32(w, (uint32_t)p->n);
    for (int i = 0; i < p->n; i++) {
        const trn_tensor_spec *s = &p->specs[i];
        uint32_t len = (uint32_t)strlen(s->name);
        put_u32(w, len);
        put(w, s->name, len);
        put_u32(w, (uint32_t)s->ndim);
        for (int d = 0; d < s->ndim; d++) put_u32(w, (uint32_t)s->shape[d]);
    }
    put_u64(w, p->n_elements);
    put_buffer(w, p, p->params);
    put_buffer(w, p, p->m);
    put_buffer(w, p, p->v);
}

int trn_ckpt_save(const char *path, const trn_params *p, const trn_ckpt_meta *meta, char *err) {
    char tmp[4096], dir[4096];
    ckpt_writer w = {0};
    int rc = -1;
    if (!meta->config || meta->config_len == 0)
        return rv_fail(err, "%s: a checkpoint needs the model config", path);
    if ((meta->tokenizer_len && !meta->tokenizer) || (meta->state_len && !meta->state))
        return rv_fail(err, "%s: a section has a length but no data", path);
    cJSON *config = cJSON_ParseWithLength(meta->config, meta->config_len);
    if (!config) return rv_fail(err, "%s: the model config is not valid JSON", path);
    cJSON_Delete(config);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return rv_fail(err, "%s: path too long", path);
    snprintf(dir, sizeof dir, "%s", path);
    w.hash = XXH3_createState();
    if (!w.hash) return rv_fail(err, "%s: out of memory", path);
    XXH3_64bits_reset_withSeed(w.hash, 0);
    w.f = fopen(tmp, "wb");
    if (!w.f) {
        rv_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto cleanup;
    }
    /* the header is written last, once the payload's size and hash are known */
    unsigned char header[HEADER_SIZE] = {0};
    if (fwrite(header, 1, HEADER_SIZE, w.f) != HEADER_SIZE) w.failed = errno ? errno : EIO;
    write_payload(&w, p, meta);
    ckpt_header h = {TRN_CKPT_FORMAT_VERSION, HEADER_SIZE, w.written,
                     (uint64_t)XXH3_64bits_digest(w.hash)};
    header_encode(header, &h);
    if (!w.failed &&
        (fflush(w.f) != 0 || pwrite(fileno(w.f), header, HEADER_SIZE, 0) != HEADER_SIZE))
        w.failed = errno ? errno : EIO;
    if (!w.failed && fsync(fileno(w.f)) != 0) w.failed = errno;
    if (fclose(w.f) != 0 && !w.failed) w.failed = errno ? errno : EIO;
    w.f = NULL;
    if (w.failed) {
        rv_fail(err, "%s: write failed: %s", tmp, strerror(w.failed));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        rv_fail(err, "%s: rename failed: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = rv_fsync_dir(dirname(dir), err);
cleanup:
    if (w.f) fclose(w.f);
    if (rc != 0) unlink(tmp);
    XXH3_freeState(w.hash);
    return rc;
}

/* ---- reader ---------------------------------------------------------------------------- */

/* A bounds-checked cursor over the verified payload. */
typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} ckpt_reader;

static const void *take(ckpt_reader *r, size_t n) {
    if (r->bad || n > r->n - r->at) {
        r->bad = 1;
        return NULL;
    }
    const void *q = r->p + r->at;
    r->at += n;
    return q;
}

static uint32_t take_u32(ckpt_reader *r) {
    uint32_t x = 0;
    const void *q = take(r, 4);
    if (q) memcpy(&x, q, 4);
    return x;
}

static uint64_t take_u64(ckpt_reader *r) {
    uint64_t x = 0;
    const void *q = take(r, 8);
    if (q) memcpy(&x, q, 8);
    return x;
}

static const void *take_blob(ckpt_reader *r, size_t *len) {
    uint64_t n = take_u64(r);
    *len = (size_t)n;
    return take(r, (size_t)n);
}

/* Parses the sections of a payload whose checksum already matched. */
static int parse_payload(trn_ckpt *ck, ckpt_reader *r, const char *path, char *err) {
    ck->meta.step = take_u64(r);
    ck->meta.config = take_blob(r, &ck->meta.config_len);
    ck->meta.tokenizer = take_blob(r, &ck->meta.tokenizer_len);
    ck->meta.state = take_blob(r, &ck->meta.state_len);
    uint32_t n = take_u32(r);
    if (r->bad || n == 0 || n > (r->n - r->at) / 8)
        return rv_fail(err, "%s: malformed checkpoint: bad header sections or tensor count", path);
    ck->tensors = calloc(n, sizeof *ck->tensors);
    if (!ck->tensors) return rv_fail(err, "%s: out of memory for %u tensors", path, n);
    uint64_t elements = 0;
    for (uint32_t i = 0; i < n; i++) {
        trn_tensor_spec *s = &ck->tensors[i];
        uint32_t len = take_u32(r);
        const char *name = len < TRN_NAME_MAX ? take(r, len) : NULL;
        if (!name || len == 0) return rv_fail(err, "%s: malformed name of tensor %u", path, i);
        s->name = strndup(name, len);
        ck->n_tensors = (int)i + 1; /* so trn_ckpt_close frees the names so far */
        s->ndim = (int)take_u32(r);
        if (!s->name || s->ndim < 1 || s->ndim > TRN_MAX_DIMS)
            return rv_fail(err, "%s: malformed shape of tensor %u", path, i);
        uint64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            uint32_t dim = take_u32(r);
            if (dim < 1 || dim > INT32_MAX || numel > r->n / dim)
                return rv_fail(err, "%s: malformed shape of tensor '%s'", path, s->name);
            s->shape[d] = (int)dim;
            numel *= dim;
        }
        elements += numel;
    }
    ck->n_elements = take_u64(r);
    if (r->bad || ck->n_elements != elements)
        return rv_fail(err,
                       "%s: malformed checkpoint: tensor table sums to %llu floats, file says %llu",
                       path, (unsigned long long)elements, (unsigned long long)ck->n_elements);
    if (r->n - r->at != 3 * elements * sizeof(float))
        return rv_fail(err, "%s: malformed checkpoint: %zu bytes of tensor data, expected %llu",
                       path, r->n - r->at, (unsigned long long)(3 * elements * sizeof(float)));
    ck->data = r->p + r->at;
    return 0;
}

int trn_ckpt_open(const char *path, trn_ckpt *ck, char *err) {
    memset(ck, 0, sizeof *ck);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    unsigned char head[HEADER_SIZE];
    ssize_t got = 0;
    if (fstat(fd, &st) != 0) {
        rv_fail(err, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    got = pread(fd, head, HEADER_SIZE, 0);
    if (got < 0) {
        rv_fail(err, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    if (got < 8 || memcmp(head, CKPT_MAGIC, 8) != 0) {
        rv_fail(err, "%s: not a reveal checkpoint (no REVEALCK magic at the start)", path);
        goto fail;
    }
    if (got < HEADER_SIZE) {
        rv_fail(err, "%s: truncated checkpoint: %lld bytes, shorter than the %d-byte header", path,
                (long long)st.st_size, HEADER_SIZE);
        goto fail;
    }
    ckpt_header h;
    memcpy(&h.version, head + 8, 4);
    memcpy(&h.header_size, head + 12, 4);
    memcpy(&h.payload_size, head + 16, 8);
    memcpy(&h.payload_hash, head + 24, 8);
    if (h.version > TRN_CKPT_FORMAT_VERSION || h.version == 0) {
        rv_fail(err, "%s: checkpoint format version %u; this build reads versions 1 to %d", path,
                h.version, TRN_CKPT_FORMAT_VERSION);
        goto fail;
    }
    if (h.header_size != HEADER_SIZE) {
        rv_fail(err, "%s: corrupt checkpoint header (header size %u, expected %d)", path,
                h.header_size, HEADER_SIZE);
        goto fail;
    }
    for (int i = RESERVED_AT; i < HEADER_SIZE; i++)
        if (head[i] != 0) {
            rv_fail(err, "%s: corrupt checkpoint header (reserved byte %d is not zero)", path, i);
            goto fail;
        }
    uint64_t expected = HEADER_SIZE + h.payload_size;
    if (h.payload_size > (uint64_t)INT64_MAX - HEADER_SIZE || (uint64_t)st.st_size < expected) {
        rv_fail(err, "%s: truncated checkpoint: header says %llu bytes, file has %lld", path,
                (unsigned long long)expected, (long long)st.st_size);
        goto fail;
    }
    if ((uint64_t)st.st_size > expected) {
        rv_fail(err, "%s: corrupt checkpoint: header says %llu bytes, file has %lld", path,
                (unsigned long long)expected, (long long)st.st_size);
        goto fail;
    }
    ck->map_len = (size_t)st.st_size;
    ck->map = mmap(NULL, ck->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ck->map == MAP_FAILED) {
        ck->map = NULL;
        rv_fail(err, "%s: cannot map %zu bytes: %s", path, ck->map_len, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    ck->format_version = h.version;
    const unsigned char *payload = (const unsigned char *)ck->map + HEADER_SIZE;
    uint64_t actual = rv_hash64(payload, (size_t)h.payload_size, 0);
    if (actual != h.payload_hash) {
        rv_fail(err, "%s: corrupt checkpoint: payload checksum %016llx, header says %016llx", path,
                (unsigned long long)actual, (unsigned long long)h.payload_hash);
        goto fail;
    }
    ckpt_reader r = {payload, (size_t)h.payload_size, 0, 0};
    if (parse_payload(ck, &r, path, err) != 0) goto fail;
    return 0;
fail:
    if (fd >= 0) close(fd);
    trn_ckpt_close(ck);
    return -1;
}

void trn_ckpt_close(trn_ckpt *ck) {
    for (int i = 0; i < ck->n_tensors; i++) free((char *)ck->tensors[i].name);
    free(ck->tensors);
    if (ck->map) munmap(ck->map, ck->map_len);
    memset(ck, 0, sizeof *ck);
}

/* ---- matching the model ---------------------------------------------------------------- */

/* Writes a short rendering of a JSON value (or "(missing)") into buf. */
static void json_brief(const cJSON *v, char *buf, size_t n) {
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, n, "%s", v ? (s ? s : "?") : "(missing)");
    if (strlen(buf) == n - 1 && n > 4) memcpy(buf + n - 4, "...", 3);
    free(s);
}

/* Finds the first difference between two JSON values; writes its path into where and returns 1,
 * or returns 0 when they are equal. Numbers compare exactly, object keys in either order. */
static int json_diff(const cJSON *a, const cJSON *b, char *where, size_t n, const cJSON **da,
                     const cJSON **db) {
    *da = a;
    *db = b;
    if (!a || !b || (a->type & 0xFF) != (b->type & 0xFF)) return 1;
    size_t len = strlen(where);
    if (cJSON_IsObject(a)) {
        for (int pass = 0; pass < 2; pass++) {
            const cJSON *from = pass ? b : a, *other = pass ? a : b;
            for (const cJSON *c = from->child; c; c = c->next) {
                snprintf(where + len, n - len, "%s%s", len ? "." : "", c->string);
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(other, c->string);
                if (pass == 0 && json_diff(c, o, where, n, da, db)) return 1;
                if (pass == 1 && !o) {
                    *da = NULL;
                    *db = c;
                    return 1;
                }
            }
        }
        where[len] = 0;
        return 0;
    }
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (int i = 0; x || y; i++) {
            snprintf(where + len, n - len, "[%d]", i);
            if (json_diff(x, y, where, n, da, db)) return 1;
            x = x->next;
            y = y->next;
        }
        where[len] = 0;
        return 0;
    }
    if (cJSON_IsNumber(a)) return a->valuedouble != b->valuedouble;
    if (cJSON_IsString(a)) return strcmp(a->valuestring, b->valuestring) != 0;
    return 0; /* null, true, false: equal types are equal values */
}

int trn_ckpt_check_config(const trn_ckpt *ck, const char *config, size_t config_len, char *err) {
    int rc = -1;
    cJSON *a = cJSON_ParseWithLength(ck->meta.config, ck->meta.config_len);
    cJSON *b = cJSON_ParseWithLength(config, config_len);
    if (!a) {
        rv_fail(err, "the checkpoint's config is not valid JSON");
        goto cleanup;
    }
    if (!b) {
        rv_fail(err, "the model's config is not valid JSON");
        goto cleanup;
    }
    char where[256] = "";
    const cJSON *da, *db;
    if (json_diff(a, b, where, sizeof where, &da, &db)) {
        char va[96], vb[96];
        json_brief(da, va, sizeof va);
        json_brief(db, vb, sizeof vb);
        rv_fail(err, "config does not match the checkpoint at '%s': checkpoint %s, model %s",
                where[0] ? where : "(top level)", va, vb);
        goto cleanup;
    }
    rc = 0;
cleanup:
    cJSON_Delete(a);
    cJSON_Delete(b);
    return rc;
}

static int same_tensor(const trn_tensor_spec *a, const trn_tensor_spec *b) {
    if (strcmp(a->name, b->name) != 0 || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

int trn_ckpt_restore(const trn_ckpt *ck, trn_params *p, char *err) {
    int n = ck->n_tensors > p->n ? ck->n_tensors : p->n;
    for (int i = 0; i < n; i++) {
        if (i < ck->n_tensors && i < p->n && same_tensor(&ck->tensors[i], &p->specs[i])) continue;
        char a[192] = "(none)", b[192] = "(none)";
        if (i < ck->n_tensors) trn_params_shape_str(&ck->tensors[i], a, sizeof a);
        if (i < p->n) trn_params_shape_str(&p->specs[i], b, sizeof b);
        return rv_fail(err,
                       "tensor table does not match the checkpoint (%d tensors vs the model's %d): "
                       "entry %d is %s in the checkpoint, %s in the model",
                       ck->n_tensors, p->n, i, a, b);
    }
    float *bufs[3] = {p->params, p->m, p->v};
    for (int k = 0; k < 3; k++) {
        const unsigned char *src = ck->data + (size_t)k * ck->n_elements * sizeof(float);
        for (int i = 0; i < p->n; i++) {
            memcpy(bufs[k] + p->offset[i], src, p->numel[i] * sizeof(float));
            src += p->numel[i] * sizeof(float);
        }
    }
    return 0;
}
