/* bench/engine_infra/bench_engine_infra.c — what the model's infrastructure costs per step and
 * per checkpoint, at the size of the reference encoder-decoder of bench/train_step (width 256,
 * 4 encoder + 2 decoder layers, MLP 1024, vocabulary 8,000: 10.9M parameters), and how fast the
 * tokenizer trains and encodes.
 *
 *   build/bench/engine_infra/bench_engine_infra [checkpoint directory, default .]
 *
 * Prints medians of repeated runs with the machine load beside them.
 */
#include "ckpt.h"
#include "optim.h"
#include "params.h"
#include "rv.h"
#include "threads.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPEATS 15

/* CPU seconds used by the whole process (all threads): beside wall time it shows how much of
 * a figure is the machine's other load. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

static void load(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(buf, (int)n, f)) snprintf(buf, n, "unknown");
    if (f) fclose(f);
    buf[strcspn(buf, " ")] = 0; /* the 1-minute figure */
}

/* The reference model's tensor table (T5 v1.1 blocks, no biases, untied output). */
static int reference_table(trn_tensor_spec *t, char names[][48]) {
    int n = 0;
#define ADD(NAME, ...)                                                                             \
    do {                                                                                           \
        snprintf(names[n], 48, "%s", NAME);                                                        \
        int dims[] = {__VA_ARGS__};                                                                \
        t[n] = (trn_tensor_spec){names[n], (int)(sizeof dims / sizeof *dims), {0}, 1.0f, 1};       \
        memcpy(t[n].shape, dims, sizeof dims);                                                     \
        t[n].decay = t[n].ndim > 1;                                                                \
        n++;                                                                                       \
    } while (0)
    char nm[48];
    ADD("embed", 8000, 256);
    for (int l = 0; l < 6; l++) {
        const char *stack = l < 4 ? "enc" : "dec";
        int i = l < 4 ? l : l - 4;
        const char *mats[] = {"q", "k", "v", "o", "xq", "xk", "xv", "xo"};
        snprintf(nm, sizeof nm, "%s.%d.norm1", stack, i);
        ADD(nm, 256);
        for (int m = 0; m < (l < 4 ? 4 : 8); m++) {
            snprintf(nm, sizeof nm, "%s.%d.attn.%s", stack, i, mats[m]);
            ADD(nm, 256, 256);
        }
        if (l >= 4) {
            snprintf(nm, sizeof nm, "%s.%d.norm_x", stack, i);
            ADD(nm, 256);
        }
        snprintf(nm, sizeof nm, "%s.%d.norm2", stack, i);
        ADD(nm, 256);
        snprintf(nm, sizeof nm, "%s.%d.mlp.wi0", stack, i);
        ADD(nm, 256, 1024);
        snprintf(nm, sizeof nm, "%s.%d.mlp.wi1", stack, i);
        ADD(nm, 256, 1024);
        snprintf(nm, sizeof nm, "%s.%d.mlp.wo", stack, i);
        ADD(nm, 1024, 256);
    }
    ADD("enc.final_norm", 256);
    ADD("dec.final_norm", 256);
    ADD("lm_head", 256, 8000);
#undef ADD
    return n;
}

static void bench_adamw(trn_params *p, int threads) {
    char err[RV_ERR_MAX], ld[32], line[200];
    trn_threads_info info;
    if (trn_threads_setup(threads, &info, err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    trn_threads_describe(&info, line, sizeof line);
    trn_adamw_config c;
    trn_adamw_config_default(&c);
    c.sched.warmup_steps = 10;
    c.sched.total_steps = 1000;
    double t_step[REPEATS], t_norm[REPEATS], c_step[REPEATS], norm;
    for (int r = -3; r < REPEATS; r++) {
        double t0 = rv_now();
        trn_grad_norm(p, &norm, err);
        double t1 = rv_now(), c1 = cpu_now();
        if (trn_adamw_step(p, &c, r + 3, NULL, err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        double t2 = rv_now(), c2 = cpu_now();
        if (r >= 0) t_norm[r] = t1 - t0, t_step[r] = t2 - t1, c_step[r] = c2 - c1;
    }
    load(ld, sizeof ld);
    double step = median(t_step, REPEATS), nrm = median(t_norm, REPEATS);
    /* AdamW reads g, w, m, v and writes w, m, v: 28 bytes per parameter */
    printf("adamw   %s\n", line);
    printf("adamw   step %.2f ms wall, %.2f ms CPU (%.1f GB/s of parameter state), grad norm "
           "%.2f ms, %zu params, median of %d, load %s\n",
           step * 1e3, median(c_step, REPEATS) * 1e3, 28.0 * (double)p->n_elements / step / 1e9,
           nrm * 1e3, p->n_elements, REPEATS, ld);
}

/* The replica checksum of DESIGN.md §4, over the whole parameter buffer. */
static void bench_checksum(const trn_params *p) {
    double t[REPEATS];
    char ld[32];
    uint64_t h = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = rv_now();
        h ^= trn_params_checksum(p);
        t[r] = rv_now() - t0;
    }
    load(ld, sizeof ld);
    double s = median(t, REPEATS);
    printf("check   parameter checksum over %.1f MB: %.2f ms (%.1f GB/s), median of %d, load %s "
           "[%016llx]\n",
           (double)p->total * sizeof(float) / 1e6, s * 1e3,
           (double)p->total * sizeof(float) / s / 1e9, REPEATS, ld, (unsigned long long)h);
}

static void bench_ckpt(trn_params *p, const char *dir) {
    char path[4096], err[RV_ERR_MAX], ld[32];
    snprintf(path, sizeof path, "%s/bench_engine_infra.ckpt", dir);
    const char *config = "{\"d_model\": 256, \"heads\": 4, \"enc_layers\": 4, \"dec_layers\": 2}";
    trn_ckpt_meta meta = {.step = 1, .config = config, .config_len = strlen(config)};
    double t_save[5], t_load[5];
    for (int r = 0; r < 5; r++) {
        double t0 = rv_now();
        if (trn_ckpt_save(path, p, &meta, err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        double t1 = rv_now();
        trn_ckpt ck;
        if (trn_ckpt_open(path, &ck, err) != 0 || trn_ckpt_restore(&ck, p, err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        trn_ckpt_close(&ck);
        t_load[r] = rv_now() - t1;
        t_save[r] = t1 - t0;
    }
    load(ld, sizeof ld);
    double mb = 3.0 * (double)p->n_elements * sizeof(float) / 1e6;
    double s = median(t_save, 5), l = median(t_load, 5);
    printf("ckpt    %.1f MB file in %s: save %.0f ms (%.0f MB/s, fsync included), "
           "open+verify+restore %.0f ms (%.0f MB/s, page cache warm), median of 5, load %s\n",
           mb, dir, s * 1e3, mb / s, l * 1e3, mb / l, ld);
    unlink(path);
}

/* Trains on the license texts every Debian system has, then encodes them. */
static void bench_tokenizer(void) {
    const char *files[] = {"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/GPL-2",
                           "/usr/share/common-licenses/LGPL-3",
                           "/usr/share/common-licenses/Apache-2.0",
                           "/usr/share/common-licenses/MPL-2.0"};
    char corpus[] = "bench_engine_infra_corpus.txt", err[RV_ERR_MAX], ld[32];
    FILE *out = fopen(corpus, "w");
    size_t bytes = 0;
    for (int i = 0; out && i < 5; i++) {
        void *d;
        size_t n;
        if (rv_read_file(files[i], 1 << 24, &d, &n, err) != 0) continue;
        fwrite(d, 1, n, out);
        bytes += n;
        free(d);
    }
    if (!out) return;
    fclose(out);
    for (int type = 0; type < 2; type++) {
        trn_tok_train_opts o;
        trn_tok_train_opts_default(&o);
        o.type = type ? TRN_TOK_BPE : TRN_TOK_UNIGRAM;
        o.vocab_size = 2000;
        void *model;
        size_t len;
        double t0 = rv_now();
        if (trn_tok_train_file(corpus, &o, &model, &len, err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        double t_train = rv_now() - t0;
        trn_tokenizer *tok;
        if (trn_tok_load(model, len, &tok, err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        void *d;
        size_t n;
        rv_read_file(corpus, 1 << 26, &d, &n, err);
        int32_t *ids = malloc(8192 * sizeof *ids);
        size_t tokens = 0;
        t0 = rv_now();
        for (char *line = d; line && *line;) {
            char *next = strchr(line, '\n');
            size_t ll = next ? (size_t)(next - line) : strlen(line);
            int k;
            if (ll && trn_tok_encode(tok, line, ll, 0, 8192, ids, &k, NULL, err) == 0)
                tokens += (size_t)k;
            line = next ? next + 1 : NULL;
        }
        double t_enc = rv_now() - t0;
        load(ld, sizeof ld);
        printf("tok     %s, %d pieces, %.0f kB of license text: train %.2f s, encode %.1f MB/s "
               "(%.2f M tokens/s, %.2f bytes/token), load %s\n",
               type ? "bpe" : "unigram", o.vocab_size, bytes / 1e3, t_train,
               (double)n / t_enc / 1e6, (double)tokens / t_enc / 1e6, (double)n / (double)tokens,
               ld);
        free(ids);
        free(d);
        free(model);
        trn_tok_free(tok);
    }
    unlink(corpus);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    static trn_tensor_spec specs[128];
    static char names[128][48];
    int n = reference_table(specs, names);
    trn_params p;
    char err[RV_ERR_MAX];
    if (trn_params_init(&p, specs, n, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < p.total; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p.params[i] = (float)((double)(s >> 40) / 16777216.0 - 0.5) * 0.1f;
        p.grads[i] = p.params[i] * 0.01f;
    }
    printf("command: %s %s   (%d cores)\n", argv[0], dir, (int)sysconf(_SC_NPROCESSORS_ONLN));
    bench_adamw(&p, 1);
    bench_adamw(&p, 2);
    bench_checksum(&p);
    bench_ckpt(&p, dir);
    bench_tokenizer();
    trn_params_free(&p);
    return 0;
}
