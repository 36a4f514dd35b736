/* bench/learn/main.c — a training run on the generated world with the recipe of
 * docs/learning.md, any field overridden as key=value, printing the curves and the final
 * evaluation (with memory refreshed first): test accuracy on never-asked facts, memory removed,
 * recall@K, p(gold|x), and a knowledge edit of half the facts. bench/learn/run.sh runs the
 * longer runs, the seeds and the ablations.
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/learn/bench_learn [key=value ...]
 *   keys: mechanism (=1: coord_config_mechanism, first) seed steps warm_steps warm_others warm_ramp
 * tau_scale head_pool batch topk rho inject edit_every edit_fraction lr log_every eval_rows
 * entities relations objects unasked world_seed model_seed con omega_off uniform_gate memory_off
 * reencode width
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "rv.h"

static int set(coord_config *c, const char *kv, char *err) {
    const char *eq = strchr(kv, '=');
    if (!eq) return rv_fail(err, "argument \"%s\" is not key=value", kv);
    size_t n = (size_t)(eq - kv);
    const char *v = eq + 1;
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end)
        return rv_fail(err, "value of %.*s is not a number: \"%s\"", (int)n, kv, v);
#define KEY(name) (n == strlen(name) && strncmp(kv, name, n) == 0)
    if (KEY("mechanism")) {
        if (x) coord_config_mechanism(c); /* the whole config: give it before other keys */
    } else if (KEY("seed"))
        c->seed = (uint64_t)x;
    else if (KEY("steps"))
        c->steps = c->opt.sched.total_steps = (long)x;
    else if (KEY("warm_steps"))
        c->warm_steps = (long)x;
    else if (KEY("warm_ramp"))
        c->warm_ramp = (long)x;
    else if (KEY("head_pool"))
        c->model.head_pool = (int)x;
    else if (KEY("tau_scale"))
        c->model.tau_scale = (float)x;
    else if (KEY("warm_others"))
        c->warm_others = (int)x;
    else if (KEY("batch"))
        c->batch = (int)x;
    else if (KEY("topk"))
        c->topk = (int)x;
    else if (KEY("rho"))
        c->rho = (float)x;
    else if (KEY("inject"))
        c->inject = (float)x;
    else if (KEY("edit_every"))
        c->edit_every = (long)x;
    else if (KEY("edit_fraction"))
        c->edit_fraction = x;
    else if (KEY("lr"))
        c->opt.sched.lr = c->opt.sched.min_lr = (float)x;
    else if (KEY("log_every"))
        c->log_every = (long)x;
    else if (KEY("eval_rows"))
        c->eval_rows = (int)x;
    else if (KEY("entities"))
        c->world.entities = (int)x;
    else if (KEY("relations"))
        c->world.relations = (int)x;
    else if (KEY("objects"))
        c->world.objects = (int)x;
    else if (KEY("unasked"))
        c->world.unasked = (int)x;
    else if (KEY("world_seed"))
        c->world.seed = (uint64_t)x;
    else if (KEY("model_seed"))
        c->model.seed = (uint64_t)x;
    else if (KEY("con"))
        c->model.con_weight = (float)x;
    else if (KEY("omega_off"))
        c->model.omega_off = (int)x;
    else if (KEY("uniform_gate"))
        c->model.uniform_gate = (int)x;
    else if (KEY("memory_off"))
        c->memory_off = (int)x;
    else if (KEY("reencode"))
        c->rho = x ? c->rho : 0.0f;
    else if (KEY("width"))
        c->model.width = c->model.key_dim = (int)x;
    else
        return rv_fail(err, "unknown key \"%.*s\"", (int)n, kv);
#undef KEY
    return 0;
}

int main(int argc, char **argv) {
    char err[RV_ERR_MAX];
    coord_config cfg;
    coord_config_default(&cfg);
    for (int i = 1; i < argc; i++)
        if (set(&cfg, argv[i], err)) {
            fprintf(stderr, "bench_learn: %s\n", err);
            return 2;
        }
    coord_trainer t;
    double t0 = rv_now();
    if (coord_trainer_init(&t, &cfg, err) || coord_train(&t, err)) {
        fprintf(stderr, "bench_learn: %s\n", err);
        return 1;
    }
    double train_s = rv_now() - t0;
    size_t n = 0, *qs = coord_test_questions(t.w, 0, &n);
    coord_eval ev;
    world_edit e;
    int rc = 1;
    if (!qs || coord_memory_refresh(&t.mem, &t.model, &t.texts, 1, t.encoder_version, NULL, err) ||
        coord_evaluate(&t, qs, n, NULL, &ev, err)) {
        fprintf(stderr, "bench_learn: %s\n", err);
        goto cleanup;
    }
    printf("final: %ld steps in %.1f s | test acc %.3f  memory removed %.3f  recall@%d %.3f  "
           "p(gold) %.3f  p(gold) among %d fused golds %.3f  (%zu never-asked questions)\n",
           t.step, train_s, ev.acc, ev.acc_nomem, cfg.topk, ev.recall, ev.p_gold,
           1 + cfg.warm_others, ev.p_gold_warm, n);
    size_t encoded = 0;
    if (cfg.memory_off == 0) {
        if (coord_edit(&t, 0.5, 0xED17, 0, &e, &encoded, err)) {
            fprintf(stderr, "bench_learn: %s\n", err);
            goto cleanup;
        }
        size_t *eq = malloc(e.n_facts * sizeof *eq);
        const char **old = malloc(e.n_facts * sizeof *old);
        for (size_t i = 0; eq && old && i < e.n_facts; i++) {
            eq[i] = (size_t)e.facts[i].entity * cfg.world.relations + e.facts[i].relation;
            old[i] = t.w->object_words[e.facts[i].old_object];
        }
        if (!eq || !old || coord_evaluate(&t, eq, e.n_facts, old, &ev, err)) {
            fprintf(stderr, "bench_learn: %s\n", err);
            free(eq);
            free(old);
            world_edit_free(&e);
            goto cleanup;
        }
        printf("edit: %zu facts re-drawn, %zu items re-encoded | new answer %.3f  old answer "
               "%.3f\n",
               e.n_facts, encoded, ev.acc, ev.acc_old);
        free(eq);
        free(old);
        world_edit_free(&e);
    }
    rc = 0;
cleanup:
    free(qs);
    coord_trainer_free(&t);
    return rc;
}
