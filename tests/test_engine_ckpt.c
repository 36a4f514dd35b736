/* tests/test_engine_ckpt.c — checkpoints: round trip, every refusal with its message, and
 * bit-identical resume on a real objective.
 *
 * The objective: a two-layer regression network y = s ⊙ (W2 tanh(W1 x + b1)) fitted by mean squared
 * error to a fixed random teacher, minibatches drawn by the caller's own RNG (its state travels in
 * the checkpoint's opaque blob), s a frozen tensor. Train N steps, save, train M more; then load
 * into a fresh model and train M: the losses and final buffers must agree bit for bit. A control
 * run that drops AdamW's moments after loading must diverge, which shows the comparison would
 * catch a checkpoint that forgot them.
 */
#include "check.h"
#include "ckpt.h"
#include "optim.h"
#include "params.h"
#include "rv.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { D_IN = 6, D_HID = 9, D_OUT = 3, N_DATA = 64, BATCH = 8 };

static const char *CONFIG = "{\"model\": {\"d_in\": 6, \"d_hidden\": 9, \"d_out\": 3, "
                            "\"act\": \"tanh\"}, \"layers\": [6, 9, 3]}";
static const char TOKENIZER[] = "tokenizer model bytes, opaque to the checkpoint \x00\x01\xFF";

static trn_tensor_spec specs[] = {
    {"w1", 2, {D_HID, D_IN}, 1.0f, 1},
    {"b1", 1, {D_HID}, 1.0f, 0},
    {"w2", 2, {D_OUT, D_HID}, 0.5f, 1},
    {"scale", 1, {D_OUT}, 0.0f, 0},
};

/* The caller's state: RNG and data cursor, saved as an opaque blob. */
typedef struct {
    uint64_t rng;
    uint64_t seen;
} run_state;

static uint64_t next_u64(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static float uniform(uint64_t *s) {
    return (float)((double)(next_u64(s) >> 11) / 9007199254740992.0 * 2 - 1);
}

static float data_x[N_DATA][D_IN], data_y[N_DATA][D_OUT];

static void make_data(void) {
    uint64_t s = 12345;
    float t1[D_HID][D_IN], t2[D_OUT][D_HID];
    for (int i = 0; i < D_HID; i++)
        for (int j = 0; j < D_IN; j++) t1[i][j] = uniform(&s);
    for (int i = 0; i < D_OUT; i++)
        for (int j = 0; j < D_HID; j++) t2[i][j] = uniform(&s);
    for (int n = 0; n < N_DATA; n++) {
        for (int j = 0; j < D_IN; j++) data_x[n][j] = uniform(&s);
        for (int o = 0; o < D_OUT; o++) {
            float acc = 0;
            for (int h = 0; h < D_HID; h++) {
                float z = 0;
                for (int j = 0; j < D_IN; j++) z += t1[h][j] * data_x[n][j];
                acc += t2[o][h] * tanhf(z);
            }
            data_y[n][o] = acc;
        }
    }
}

static void init_model(trn_params *p, uint64_t seed) {
    char err[RV_ERR_MAX];
    REQUIRE(trn_params_init(p, specs, 4, err) == 0);
    for (int i = 0; i < 3; i++) {
        trn_view v = trn_params_at(p, i);
        for (size_t k = 0; k < v.numel; k++) v.w[k] = 0.5f * uniform(&seed);
    }
    trn_view s = trn_params_at(p, 3);
    for (size_t k = 0; k < s.numel; k++) s.w[k] = 1.0f + 0.25f * (float)k;
}

/* One minibatch: forward, loss, backward into p->grads, AdamW. Returns the loss. */
static float train_step(trn_params *p, run_state *st, long step) {
    const float *w1 = trn_params_at(p, 0).w, *b1 = trn_params_at(p, 1).w;
    const float *w2 = trn_params_at(p, 2).w, *sc = trn_params_at(p, 3).w;
    float *dw1 = trn_params_at(p, 0).g, *db1 = trn_params_at(p, 1).g;
    float *dw2 = trn_params_at(p, 2).g, *dsc = trn_params_at(p, 3).g;
    trn_params_zero_grad(p);
    float loss = 0;
    for (int b = 0; b < BATCH; b++) {
        int n = (int)(next_u64(&st->rng) % N_DATA);
        st->seen++;
        float h[D_HID], u[D_OUT], dy[D_OUT], dh[D_HID];
        for (int i = 0; i < D_HID; i++) {
            float z = b1[i];
            for (int j = 0; j < D_IN; j++) z += w1[i * D_IN + j] * data_x[n][j];
            h[i] = tanhf(z);
        }
        for (int o = 0; o < D_OUT; o++) {
            u[o] = 0;
            for (int i = 0; i < D_HID; i++) u[o] += w2[o * D_HID + i] * h[i];
            float e = sc[o] * u[o] - data_y[n][o];
            loss += e * e / (BATCH * D_OUT);
            dy[o] = 2 * e / (BATCH * D_OUT);
            dsc[o] += dy[o] * u[o];
        }
        for (int i = 0; i < D_HID; i++) {
            dh[i] = 0;
            for (int o = 0; o < D_OUT; o++) {
                dw2[o * D_HID + i] += dy[o] * sc[o] * h[i];
                dh[i] += dy[o] * sc[o] * w2[o * D_HID + i];
            }
            float dz = dh[i] * (1 - h[i] * h[i]);
            db1[i] += dz;
            for (int j = 0; j < D_IN; j++) dw1[i * D_IN + j] += dz * data_x[n][j];
        }
    }
    trn_adamw_config c;
    trn_adamw_config_default(&c);
    c.clip_norm = 0.5f;
    c.sched = (trn_schedule){.lr = 0.05f,
                             .min_lr = 0.005f,
                             .warmup_steps = 3,
                             .total_steps = 20,
                             .decay = TRN_DECAY_COSINE};
    char err[RV_ERR_MAX];
    REQUIRE(trn_adamw_step(p, &c, step, NULL, err) == 0);
    return loss;
}

static int same_buffers(const trn_params *a, const trn_params *b) {
    size_t n = a->total * sizeof(float);
    return a->total == b->total && memcmp(a->params, b->params, n) == 0 &&
           memcmp(a->m, b->m, n) == 0 && memcmp(a->v, b->v, n) == 0;
}

enum { N_FIRST = 7, N_MORE = 8 };

static void save_at(const char *path, const trn_params *p, const run_state *st, long step) {
    trn_ckpt_meta meta = {.step = (uint64_t)step,
                          .config = CONFIG,
                          .config_len = strlen(CONFIG),
                          .tokenizer = TOKENIZER,
                          .tokenizer_len = sizeof TOKENIZER,
                          .state = st,
                          .state_len = sizeof *st};
    char err[RV_ERR_MAX];
    int rc = trn_ckpt_save(path, p, &meta, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
}

/* Loads path into a fresh model; returns the caller state and step from the blob. */
static void load_into(const char *path, trn_params *p, run_state *st, long *step) {
    init_model(p, 999); /* different weights: restore must overwrite them */
    trn_ckpt ck;
    char err[RV_ERR_MAX];
    int rc = trn_ckpt_open(path, &ck, err);
    REQUIRE(rc == 0 || (fprintf(stderr, "%s\n", err), 0));
    CHECKF(trn_ckpt_check_config(&ck, CONFIG, strlen(CONFIG), err) == 0, "%s", err);
    CHECKF(trn_ckpt_restore(&ck, p, err) == 0, "%s", err);
    CHECK(ck.format_version == TRN_CKPT_FORMAT_VERSION);
    CHECK(ck.meta.config_len == strlen(CONFIG) &&
          memcmp(ck.meta.config, CONFIG, strlen(CONFIG)) == 0);
    CHECK(ck.meta.tokenizer_len == sizeof TOKENIZER &&
          memcmp(ck.meta.tokenizer, TOKENIZER, sizeof TOKENIZER) == 0);
    REQUIRE(ck.meta.state_len == sizeof *st);
    memcpy(st, ck.meta.state, sizeof *st);
    *step = (long)ck.meta.step;
    CHECK(ck.n_tensors == 4 && strcmp(ck.tensors[2].name, "w2") == 0 &&
          ck.tensors[2].shape[1] == D_HID);
    trn_ckpt_close(&ck);
}

static void test_resume_bit_identical(const char *path) {
    trn_params a;
    init_model(&a, 42);
    run_state st = {.rng = 0x2545F4914F6CDD1Dull, .seen = 0};
    float first = 0, loss_a[N_MORE];
    for (long s = 0; s < N_FIRST; s++) {
        float l = train_step(&a, &st, s);
        if (s == 0) first = l;
    }
    save_at(path, &a, &st, N_FIRST);
    for (int s = 0; s < N_MORE; s++) loss_a[s] = train_step(&a, &st, N_FIRST + s);
    CHECKF(loss_a[N_MORE - 1] < 0.5f * first, "the objective did not train: %g -> %g", first,
           loss_a[N_MORE - 1]);
    CHECK(trn_params_at(&a, 3).w[2] == 1.5f); /* frozen */

    trn_params b;
    run_state sb;
    long step;
    load_into(path, &b, &sb, &step);
    CHECK(step == N_FIRST && sb.seen == (uint64_t)N_FIRST * BATCH);
    int same_losses = 1;
    for (int s = 0; s < N_MORE; s++) {
        float l = train_step(&b, &sb, step + s);
        same_losses &= memcmp(&l, &loss_a[s], sizeof l) == 0;
    }
    CHECK(same_losses);
    CHECK(same_buffers(&a, &b));
    CHECK(trn_params_checksum(&a) == trn_params_checksum(&b));
    CHECK(sb.rng == st.rng);
    printf("resume: loss %.6f -> %.6f over %d steps; resumed run bit-identical: %s\n", first,
           loss_a[N_MORE - 1], N_FIRST + N_MORE,
           same_losses && same_buffers(&a, &b) ? "yes" : "no");

    /* control: the same resume without AdamW's moments diverges */
    trn_params c;
    run_state sc;
    load_into(path, &c, &sc, &step);
    memset(c.m, 0, c.total * sizeof(float));
    memset(c.v, 0, c.total * sizeof(float));
    for (int s = 0; s < N_MORE; s++) train_step(&c, &sc, step + s);
    CHECK(memcmp(a.params, c.params, a.total * sizeof(float)) != 0);
    trn_params_free(&a);
    trn_params_free(&b);
    trn_params_free(&c);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    REQUIRE(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void expect_open_error(const char *path, const char *needle) {
    trn_ckpt ck;
    char err[RV_ERR_MAX] = "";
    int rc = trn_ckpt_open(path, &ck, err);
    CHECKF(rc == -1, "opened a bad checkpoint (expected '%s')", needle);
    CHECKF(strstr(err, needle), "error '%s' does not mention '%s'", err, needle);
    if (rc == 0) trn_ckpt_close(&ck);
}

static void test_refusals(const char *good) {
    void *data;
    size_t n;
    char err[RV_ERR_MAX], want[256];
    REQUIRE(rv_read_file(good, 1 << 24, &data, &n, err) == 0);
    unsigned char *b = data;
    const char *bad = "engine_ckpt_bad.bin";

    write_bytes(bad, "this is a text file, not a checkpoint\n", 38);
    expect_open_error(bad, "engine_ckpt_bad.bin: not a reveal checkpoint");
    write_bytes(bad, "", 0);
    expect_open_error(bad, "not a reveal checkpoint");
    expect_open_error("engine_ckpt_missing.bin", "engine_ckpt_missing.bin: cannot open");

    write_bytes(bad, b, 30);
    expect_open_error(bad, "truncated checkpoint: 30 bytes, shorter than the 64-byte header");
    write_bytes(bad, b, n - 100);
    snprintf(want, sizeof want, "truncated checkpoint: header says %zu bytes, file has %zu", n,
             n - 100);
    expect_open_error(bad, want);
    unsigned char *longer = malloc(n + 5);
    REQUIRE(longer);
    memcpy(longer, b, n);
    memset(longer + n, 0, 5);
    write_bytes(bad, longer, n + 5);
    free(longer);
    snprintf(want, sizeof want, "corrupt checkpoint: header says %zu bytes, file has %zu", n,
             n + 5);
    expect_open_error(bad, want);

    b[8] = 2; /* format version */
    write_bytes(bad, b, n);
    expect_open_error(bad, "checkpoint format version 2; this build reads versions 1 to 1");
    b[8] = 1;
    size_t at = n - 17; /* a byte of v, far from the header */
    b[at] ^= 0x04;
    write_bytes(bad, b, n);
    expect_open_error(bad, "corrupt checkpoint: payload checksum");
    b[at] ^= 0x04;
    b[64 + 8 + 8 + 3] ^= 0x20; /* a byte of the config text */
    write_bytes(bad, b, n);
    expect_open_error(bad, "corrupt checkpoint: payload checksum");
    b[64 + 8 + 8 + 3] ^= 0x20;
    write_bytes(bad, b, n);
    trn_ckpt ck;
    CHECK(trn_ckpt_open(bad, &ck, err) == 0);
    if (ck.map) trn_ckpt_close(&ck);

    /* every single-byte change anywhere in the header, and at a stride through the payload,
     * is refused */
    int accepted = 0, tried = 0;
    for (size_t i = 0; i < n; i += i < 64 ? 1 : 97) {
        b[i] ^= 0x01;
        write_bytes(bad, b, n);
        int rc = trn_ckpt_open(bad, &ck, err);
        if (rc == 0) {
            fprintf(stderr, "byte %zu flipped: accepted\n", i);
            accepted++;
            trn_ckpt_close(&ck);
        }
        tried++;
        b[i] ^= 0x01;
    }
    CHECKF(accepted == 0, "%d of %d single-byte changes accepted", accepted, tried);
    unlink(bad);
    free(data);

    /* a config or tensor table that does not match the model */
    REQUIRE(trn_ckpt_open(good, &ck, err) == 0);
    const char *wider = "{\"model\": {\"d_in\": 6, \"d_hidden\": 16, \"d_out\": 3, \"act\": "
                        "\"tanh\"}, \"layers\": [6, 9, 3]}";
    CHECK(trn_ckpt_check_config(&ck, wider, strlen(wider), err) == -1);
    CHECKF(strstr(err, "config does not match the checkpoint at 'model.d_hidden': checkpoint 9, "
                       "model 16"),
           "%s", err);
    const char *reordered = "{\"layers\": [6, 9, 3], \"model\": {\"act\": \"tanh\", \"d_out\": 3, "
                            "\"d_hidden\": 9, \"d_in\": 6}}";
    CHECKF(trn_ckpt_check_config(&ck, reordered, strlen(reordered), err) == 0, "%s", err);
    const char *extra = "{\"model\": {\"d_in\": 6, \"d_hidden\": 9, \"d_out\": 3, \"act\": "
                        "\"tanh\", \"dropout\": 0.1}, \"layers\": [6, 9, 3]}";
    CHECK(trn_ckpt_check_config(&ck, extra, strlen(extra), err) == -1);
    CHECKF(strstr(err, "at 'model.dropout': checkpoint (missing), model 0.1"), "%s", err);
    const char *arr = "{\"model\": {\"d_in\": 6, \"d_hidden\": 9, \"d_out\": 3, \"act\": "
                      "\"tanh\"}, \"layers\": [6, 9]}";
    CHECK(trn_ckpt_check_config(&ck, arr, strlen(arr), err) == -1);
    CHECKF(strstr(err, "at 'layers[2]': checkpoint 3, model (missing)"), "%s", err);
    CHECK(trn_ckpt_check_config(&ck, "{not json", 9, err) == -1);
    CHECKF(strstr(err, "the model's config is not valid JSON"), "%s", err);

    trn_tensor_spec other[4];
    memcpy(other, specs, sizeof other);
    other[2].shape[1] = D_HID + 1;
    trn_params p;
    REQUIRE(trn_params_init(&p, other, 4, err) == 0);
    for (size_t i = 0; i < p.total; i++) p.params[i] = 7.0f;
    CHECK(trn_ckpt_restore(&ck, &p, err) == -1);
    CHECKF(strstr(err, "entry 2 is w2 [3, 9] in the checkpoint, w2 [3, 10] in the model"), "%s",
           err);
    int untouched = 1;
    for (size_t i = 0; i < p.total; i++) untouched &= p.params[i] == 7.0f;
    CHECK(untouched);
    trn_params_free(&p);
    trn_tensor_spec more[5];
    memcpy(more, specs, sizeof specs);
    more[4] = (trn_tensor_spec){"extra", 1, {2}, 1.0f, 1};
    REQUIRE(trn_params_init(&p, more, 5, err) == 0);
    CHECK(trn_ckpt_restore(&ck, &p, err) == -1);
    CHECKF(strstr(err,
                  "(4 tensors vs the model's 5): entry 4 is (none) in the checkpoint, extra [2] "
                  "in the model"),
           "%s", err);
    trn_params_free(&p);
    other[1].name = "bias1";
    other[2].shape[1] = D_HID;
    REQUIRE(trn_params_init(&p, other, 4, err) == 0);
    CHECK(trn_ckpt_restore(&ck, &p, err) == -1 &&
          strstr(err, "entry 1 is b1 [9] in the checkpoint, "
                      "bias1 [9] in the model"));
    trn_params_free(&p);
    trn_ckpt_close(&ck);
}

/* Saving replaces the file atomically; a failed save (write error, missing directory, no or
 * bad config) leaves the previous file intact and no temporary file behind. */
static void test_save(const char *good) {
    trn_params p;
    init_model(&p, 7);
    run_state st = {1, 2};
    save_at(good, &p, &st, 3); /* over the existing checkpoint */
    trn_ckpt ck;
    char err[RV_ERR_MAX];
    REQUIRE(trn_ckpt_open(good, &ck, err) == 0);
    CHECK(ck.meta.step == 3);
    trn_ckpt_close(&ck);

    /* a write that fails half way (the file-size limit stands in for a full disk): a clear
     * error, no temporary file, the previous checkpoint intact */
    trn_params big;
    trn_tensor_spec big_spec[] = {{"big", 2, {256, 64}, 1.0f, 1}};
    REQUIRE(trn_params_init(&big, big_spec, 1, err) == 0);
    struct rlimit old_limit, small;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    small = old_limit;
    small.rlim_cur = 16384;
    signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    trn_ckpt_meta big_meta = {.step = 9, .config = CONFIG, .config_len = strlen(CONFIG)};
    int rc = trn_ckpt_save(good, &big, &big_meta, err);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    CHECK(rc == -1);
    CHECKF(strstr(err, "write failed: File too large"), "%s", err);
    REQUIRE(trn_ckpt_open(good, &ck, err) == 0);
    CHECK(ck.meta.step == 3 && ck.n_tensors == 4);
    trn_ckpt_close(&ck);
    trn_params_free(&big);

    trn_ckpt_meta meta = {.step = 1, .config = CONFIG, .config_len = strlen(CONFIG)};
    CHECK(trn_ckpt_save("no_such_dir/ckpt.bin", &p, &meta, err) == -1);
    CHECKF(strstr(err, "no_such_dir/ckpt.bin.tmp."), "%s", err);
    meta.config = "{\"d\": 3,";
    meta.config_len = strlen(meta.config);
    CHECK(trn_ckpt_save("engine_ckpt_noconfig.bin", &p, &meta, err) == -1);
    CHECKF(strstr(err, "engine_ckpt_noconfig.bin: the model config is not valid JSON"), "%s", err);
    meta.config = NULL;
    meta.config_len = 0;
    CHECK(trn_ckpt_save("engine_ckpt_noconfig.bin", &p, &meta, err) == -1);
    CHECKF(strstr(err, "a checkpoint needs the model config"), "%s", err);
    CHECK(access("engine_ckpt_noconfig.bin", F_OK) != 0);
    /* only this test's files: other tests run in the same directory at the same time */
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s.tmp.", good);
    DIR *d = opendir(".");
    REQUIRE(d);
    int leftovers = 0;
    for (struct dirent *e; (e = readdir(d));)
        leftovers += strncmp(e->d_name, prefix, strlen(prefix)) == 0 ||
                     strncmp(e->d_name, "engine_ckpt_noconfig.bin", 24) == 0;
    closedir(d);
    CHECK(leftovers == 0);
    trn_params_free(&p);
}

int main(void) {
    make_data();
    const char *path = "engine_ckpt_test.bin";
    test_resume_bit_identical(path);
    test_refusals(path);
    test_save(path);
    unlink(path);
    return check_report("engine_ckpt");
}
