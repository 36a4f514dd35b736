/* bench/serve/bench_serve.c — what serving top-K over MPI costs on top of the search itself.
 * Run under mpirun by run.sh: rank 0 is a client of W workers that serve one source sharded
 * over W stores; for batches of 1 and 64 queries it times wrk_client_search (send, the
 * workers' exact top-K, stored values read from RocksDB, replies, merge) after a warm-up, and
 * the same top-K in-process on one index over all keys (no values). Prints min / avg / max
 * over the repetitions and whether the merged ids equal the in-process ones.
 *
 *   bench_serve --build DIR W N DK C D    (no mpirun: W stores of N items each, and
 * DIR/layout.json) mpirun -np 1+W bench_serve LAYOUT K REPS */
#include "comm.h"
#include "memstore.h"
#include "rv.h"
#include "worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void unit(float *v, size_t n, uint64_t *s) {
    double norm = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)((rng(s) >> 40) * (1.0 / 16777216.0)) - 0.5f;
        norm += (double)v[i] * v[i];
    }
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] / sqrt(norm));
}

__attribute__((noreturn)) static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_serve: %s: %s\n", what, err);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); /* MPI_Abort does not return; the compiler cannot know */
}

/* Every key of the layout's only source, in one in-process index. */
static wrk_topk *all_keys(const wrk_layout *l, uint32_t *dk) {
    char err[RV_ERR_MAX];
    wrk_topk *ix = NULL;
    float *key = NULL;
    for (size_t s = 0; s < l->n_stores; s++) {
        mem_store *st = NULL;
        mem_iter *it = NULL;
        if (mem_open(l->stores[s].path, 1, &st, err) || mem_iter_new(st, 0, &it, err))
            die(l->stores[s].path, err);
        uint64_t id;
        Reveal__KnowledgeItem *item;
        while (mem_iter_next(it, &id, &item, err) == 1) {
            reveal__knowledge_item__free_unpacked(item, NULL);
            mem_vector_info ki;
            if (mem_get_vector_info(st, id, &ki, NULL, err) || !ki.present) continue;
            if (!ix) {
                *dk = ki.cols;
                key = malloc(ki.cols * sizeof *key);
                if (!key || wrk_topk_create(ki.cols, &ix, err)) die("index", err);
            }
            if (mem_get_vectors(st, id, key, *dk, NULL, NULL, 0, 0, NULL, err) != 1 ||
                wrk_topk_add(ix, &id, key, 1, err))
                die("loading keys", err);
        }
        mem_iter_free(it);
        mem_close(st);
    }
    free(key);
    return ix;
}

static void stats(const double *t, int n, double *mn, double *avg, double *mx) {
    *mn = *mx = t[0];
    *avg = 0;
    for (int i = 0; i < n; i++) {
        *mn = t[i] < *mn ? t[i] : *mn;
        *mx = t[i] > *mx ? t[i] : *mx;
        *avg += t[i] / n;
    }
}

/* W stores of n kg items each, every item with a key (dk) and a value (vc, vd), and a layout
 * giving them to one source "kg". */
static int build(const char *dir, int W, size_t n, uint32_t dk, uint32_t vc, uint32_t vd) {
    char err[RV_ERR_MAX], path[4096], subj[64], obj[64];
    if (rv_mkdirs(dir, err)) return fprintf(stderr, "%s\n", err), 1;
    float *key = malloc(dk * sizeof *key), *value = malloc((size_t)vc * vd * sizeof *value);
    uint64_t seed = 11;
    size_t used = (size_t)snprintf(path, sizeof path,
                                   "{\"sources\": [{\"name\": \"kg\", "
                                   "\"type\": \"kg\", \"stores\": [");
    char layout[65536];
    memcpy(layout, path, used + 1);
    for (int w = 0; w < W; w++) {
        snprintf(path, sizeof path, "%s/kg-%d", dir, w);
        used +=
            (size_t)snprintf(layout + used, sizeof layout - used, "%s\"%s\"", w ? ", " : "", path);
        mem_config cfg = {.type = REVEAL__SOURCE_TYPE__KG_TRIPLE, .image_size = 16};
        snprintf(cfg.name, sizeof cfg.name, "kg-%d", w);
        mem_store *s;
        if (mem_open_or_create(path, &cfg, &s, err)) return fprintf(stderr, "%s\n", err), 1;
        mem_batch *b = mem_batch_new(s);
        for (size_t i = 0; i < n; i++) {
            Reveal__KnowledgeItem it = REVEAL__KNOWLEDGE_ITEM__INIT;
            it.type = REVEAL__SOURCE_TYPE__KG_TRIPLE;
            snprintf(subj, sizeof subj, "entity %d.%zu", w, i);
            snprintf(obj, sizeof obj, "object %zu", i);
            it.subject = subj;
            it.relation = "has";
            it.object = obj;
            uint64_t id;
            int outcome;
            if (mem_batch_put_item(b, &it, &id, &outcome, err) || mem_batch_commit(b, 0, err))
                return fprintf(stderr, "%s\n", err), 1;
            unit(key, dk, &seed);
            for (size_t j = 0; j < (size_t)vc * vd; j++)
                value[j] = (float)((rng(&seed) >> 40) * (1.0 / 16777216.0));
            if (mem_put_vectors(s, id, 1, key, dk, value, vc, vd, err))
                return fprintf(stderr, "%s\n", err), 1;
        }
        mem_batch_free(b);
        if (mem_sync(s, err)) return fprintf(stderr, "%s\n", err), 1;
        mem_close(s);
    }
    snprintf(layout + used, sizeof layout - used, "]}]}\n");
    snprintf(path, sizeof path, "%s/layout.json", dir);
    if (rv_write_file_atomic(path, layout, strlen(layout), err))
        return fprintf(stderr, "%s\n", err), 1;
    free(key);
    free(value);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 8 && !strcmp(argv[1], "--build"))
        return build(argv[2], atoi(argv[3]), (size_t)atoll(argv[4]), (uint32_t)atoi(argv[5]),
                     (uint32_t)atoi(argv[6]), (uint32_t)atoi(argv[7]));
    MPI_Init(&argc, &argv);
    char err[RV_ERR_MAX];
    comm *c;
    if (argc != 4) die("usage", "mpirun -np 1+W bench_serve LAYOUT K REPS");
    if (comm_create("bench", &c, err)) die("comm", err);
    if (comm_rank(c) != COMM_ROOT) {
        wrk_role_options o = {.send_timeout_s = 300};
        int rc = wrk_role_run(c, argv[1], &o, err);
        if (rc < 0) die("worker", err);
        comm_free(c);
        MPI_Finalize();
        return rc ? 1 : 0;
    }
    uint32_t K = (uint32_t)atoi(argv[2]);
    int reps = atoi(argv[3]);
    wrk_client *cl;
    if (wrk_client_open(c, argv[1], 300, &cl, err)) die("set-up", err);
    const wrk_layout *l = wrk_client_layout(cl);
    if (l->n_sources != 1 || reps < 1 || K < 1) die("usage", "one source, K ≥ 1, REPS ≥ 1");
    uint32_t dk = 0;
    wrk_topk *ix = all_keys(l, &dk);
    if (!ix) die("keys", "the stores hold no keys");
    printf("bench_serve: %zu keys of dk %u over %zu workers, K %u, %d repetitions after 3 "
           "warm-up\n",
           wrk_topk_count(ix), dk, l->n_stores, K, reps);
    static const uint32_t batches[] = {1, 64};
    double *t = malloc((size_t)reps * sizeof *t), *tl = malloc((size_t)reps * sizeof *tl);
    uint64_t seed = 7, step = 1;
    for (int bi = 0; bi < 2; bi++) {
        uint32_t B = batches[bi];
        float *q = malloc((size_t)B * dk * sizeof *q); /* (B, dk) */
        uint64_t *ids = malloc((size_t)B * K * sizeof *ids);
        float *scores = malloc((size_t)B * K * sizeof *scores);
        size_t same = 0, total = 0, values_bytes = 0;
        for (int r = -3; r < reps; r++) {
            for (uint32_t b = 0; b < B; b++) unit(q + (size_t)b * dk, dk, &seed);
            wrk_hits h;
            double t0 = rv_now();
            if (wrk_client_search(cl, step++, q, B, dk, &K, &h, err)) die("search", err);
            double t1 = rv_now();
            size_t k = 0;
            if (wrk_topk_search(ix, q, B, K, ids, scores, &k, err)) die("in-process", err);
            double t2 = rv_now();
            if (r >= 0) {
                t[r] = t1 - t0;
                tl[r] = t2 - t1;
                for (size_t i = 0; i < (size_t)B * k && k == h.sources[0].k; i++)
                    same += ids[i] == h.sources[0].ids[i];
                total += (size_t)B * k;
                values_bytes = (size_t)B * h.sources[0].k * h.sources[0].c * h.sources[0].d * 4;
            }
            wrk_hits_free(&h);
        }
        double mn, avg, mx, lmn, lavg, lmx;
        stats(t, reps, &mn, &avg, &mx);
        stats(tl, reps, &lmn, &lavg, &lmx);
        printf("B %2u: distributed %8.2f / %8.2f / %8.2f ms (min/avg/max), %8.1f queries/s; "
               "in-process top-K only %7.2f / %7.2f / %7.2f ms; merged values %.2f MB per "
               "batch; ids equal %zu of %zu\n",
               B, 1e3 * mn, 1e3 * avg, 1e3 * mx, B / avg, 1e3 * lmn, 1e3 * lavg, 1e3 * lmx,
               values_bytes / 1e6, same, total);
        free(q);
        free(ids);
        free(scores);
    }
    free(t);
    free(tl);
    wrk_topk_free(ix);
    if (wrk_client_shutdown(cl, err)) die("shutdown", err);
    wrk_client_free(cl);
    comm_free(c);
    MPI_Finalize();
    return 0;
}
