/* training/ckpt.h — one-file checkpoints of a model's parameters and AdamW state.
 *
 * A checkpoint holds everything a run needs to continue bit for bit: the model config (JSON text),
 * the tokenizer model bytes, the tensor table (names, shapes), parameters, AdamW m and v, the step,
 * and an opaque blob of the caller's own state (RNG state, data order). Saving is atomic (temp
 * file, fsync, rename, fsync of the directory): a reader sees the old file or the new one.
 * The file format is described in docs/engine-infra.md; in short: a 64-byte little-endian header
 * (magic, format version, payload size, XXH3 checksum of the payload) and the payload sections.
 *
 * Loading maps the file, checks magic, version, size and checksum before anything else, and
 * refuses with one line naming what is wrong; the caller's parameters are only written once the
 * whole file has been checked and its tensor table matches the model's.
 */
#ifndef TRN_CKPT_H
#define TRN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

#define TRN_CKPT_FORMAT_VERSION 1

/* What a checkpoint carries besides the tensors. On save the pointers are the caller's; after
 * trn_ckpt_open they point into the mapped file and live until trn_ckpt_close. */
typedef struct {
    uint64_t step; /* updates applied so far */
    const char *config;
    size_t config_len;
    const void *tokenizer;
    size_t tokenizer_len;
    const void *state;
    size_t state_len;
} trn_ckpt_meta;

/* An opened, verified checkpoint. */
typedef struct {
    trn_ckpt_meta meta;
    uint32_t format_version;
    int n_tensors;
    trn_tensor_spec *tensors;  /* (n_tensors) names and shapes; lr_mult and decay are not stored */
    uint64_t n_elements;       /* floats per buffer, tensors packed without gaps */
    const unsigned char *data; /* (3, n_elements) float32 params, m, v — inside the mapping,
                                 not necessarily aligned */
    void *map;
    size_t map_len;
} trn_ckpt;

/* Writes p's parameters, m and v with meta to path, atomically. meta->config must be JSON text
 * (refused otherwise, before anything is written). */
int trn_ckpt_save(const char *path, const trn_params *p, const trn_ckpt_meta *meta, char *err);

/* Maps and verifies a checkpoint. Refuses, naming the file: not a checkpoint (bad magic), a newer
 * format version, a truncated file (expected and actual size), a checksum mismatch (corrupt
 * bytes), malformed sections. On success the caller owns *ck and closes it. */
int trn_ckpt_open(const char *path, trn_ckpt *ck, char *err);
void trn_ckpt_close(trn_ckpt *ck);

/* Compares the checkpoint's config with the model's (both JSON): fails naming the first key path
 * whose value differs, is missing on one side, or a config that is not JSON. */
int trn_ckpt_check_config(const trn_ckpt *ck, const char *config, size_t config_len, char *err);

/* Copies parameters, m and v into p after checking that the tensor tables match entry for entry
 * (the first differing name or shape is named). p is untouched on failure. */
int trn_ckpt_restore(const trn_ckpt *ck, trn_params *p, char *err);

#endif
