/* trainer/run.c — `reveal train` on every rank: config, run directory and resume (rank 0
 * decides, every rank follows), working copies of the stores, the tokenizer, the model (rank 0's
 * parameters broadcast so every rank starts identical), the memory, then rank 0's loop (refresh
 * every R updates, a log line, metrics.jsonl, checkpoints, SIGTERM/SIGUSR1) while the workers
 * serve, and a final evaluation on data.dev. docs/train.md describes all of it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "job.h"
#include "memstore.h"
#include "rv.h"
#include "threads.h"
#include "tr_impl.h"

/* Copies a directory tree file by file (a store checkpoint back into the run's working copy:
 * RocksDB appends to some of its files, so they must not be hard links into the checkpoint). */
static int copy_tree(const char *src, const char *dst, char *err) {
    DIR *d = opendir(src);
    if (!d) return rv_fail(err, "cannot open %s: %s", src, strerror(errno));
    int rc = mkdir(dst, 0755) && errno != EEXIST
                 ? rv_fail(err, "cannot create %s: %s", dst, strerror(errno))
                 : 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char s[2 * TR_PATH_MAX], t[2 * TR_PATH_MAX];
        snprintf(s, sizeof s, "%s/%s", src, e->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
        struct stat st;
        if (stat(s, &st)) {
            rc = rv_fail(err, "cannot stat %s: %s", s, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            rc = copy_tree(s, t, err);
        } else {
            void *data = NULL;
            size_t n = 0;
            rc = rv_read_file(s, (size_t)1 << 40, &data, &n, err) ||
                         rv_write_file_atomic(t, data, n, err)
                     ? -1
                     : 0;
            free(data);
        }
    }
    closedir(d);
    return rc;
}

/* Every rank learns rank 0's string (a path, or "" for none). */
int tr_bcast_string(tr_job *j, char *s, size_t cap, char *err) {
    void *buf = s;
    size_t n = j->rank == 0 ? strlen(s) + 1 : 0;
    if (tr_job_bcast_bytes(j, &buf, &n, err)) return -1;
    if (j->rank) {
        snprintf(s, cap, "%s", (const char *)buf);
        free(buf);
    }
    return 0;
}

/* Trains the tokenizer on every item text and question (rank 0), or takes the checkpoint's;
 * every rank loads the same bytes. */
int tr_setup_tokenizer(tr_job *j, int resumed, const trn_ckpt *ck, char *err) {
    void *model = NULL;
    size_t len = 0;
    char **texts = NULL;
    size_t n = 0;
    int rc = -1;
    char mine[RV_ERR_MAX] = "";
    if (!resumed && tr_job_gather_texts(j, &texts, &n, mine) == 0 && j->rank == 0) {
        char **all = realloc(texts, (n + 2 * j->task.n + 1) * sizeof *all);
        if (!all) {
            rv_fail(mine, "out of memory");
        } else {
            texts = all;
            for (size_t i = 0; i < j->task.n; i++) {
                texts[n++] = strdup(j->task.rows[i].question);
                texts[n++] = strdup(j->task.rows[i].answer);
            }
            trn_tok_train_opts o;
            trn_tok_train_opts_default(&o);
            o.type = TRN_TOK_BPE;
            /* SentencePiece refuses more pieces than the texts can form: shrink until it fits */
            for (long v = j->cfg.vocab;; v = v * 9 / 10) {
                o.vocab_size = (int)v;
                if (trn_tok_train_texts((const char *const *)texts, n, &o, &model, &len, mine) ==
                    0) {
                    if (v != j->cfg.vocab)
                        rv_info("tokenizer: %ld pieces (tokenizer.vocab %ld is more than the "
                                "texts form)",
                                v, j->cfg.vocab);
                    mine[0] = 0;
                    break;
                }
                if (v * 9 / 10 < 300) break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    if ((rc = comm_agree(j->c, mine, err))) goto cleanup;
    if (ck && j->rank == 0) {
        model = malloc(ck->meta.tokenizer_len);
        if (!model) return rv_fail(err, "out of memory");
        memcpy(model, ck->meta.tokenizer, ck->meta.tokenizer_len);
        len = ck->meta.tokenizer_len;
    }
    rc = -1;
    if (tr_job_bcast_bytes(j, &model, &len, err) == 0) rc = trn_tok_load(model, len, &j->tok, err);
cleanup:
    free(model);
    return rc;
}

static int bcast_floats(tr_job *j, float *x, size_t n, char *err) {
    for (size_t off = 0; off < n; off += (size_t)1 << 28) {
        int part = (int)(n - off < ((size_t)1 << 28) ? n - off : ((size_t)1 << 28));
        if (MPI_Bcast(x + off, part, MPI_FLOAT, 0, comm_mpi(j->c)) != MPI_SUCCESS)
            return rv_fail(err, "parameter broadcast failed");
    }
    return 0;
}

/* The model on every rank: rank 0's parameters (fresh or from the checkpoint) and AdamW state
 * broadcast, so every rank holds the same bits. */
int tr_setup_model(tr_job *j, const trn_ckpt *ck, char *err) {
    tr_model_config(&j->cfg, &j->mcfg);
    j->mcfg.vocab = trn_tok_vocab_size(j->tok);
    j->mcfg.sources = (int)j->l->n_sources;
    char mine[RV_ERR_MAX] = "";
    if (rvm_model_init(&j->model, &j->mcfg, mine) == 0 && ck && j->rank == 0 &&
        trn_ckpt_restore(ck, &j->model.params, mine) == 0)
        j->step = (long)ck->meta.step;
    int rc = comm_agree(j->c, mine, err);
    if (rc) return rc;
    trn_params *p = &j->model.params;
    long long step = j->step;
    MPI_Bcast(&step, 1, MPI_LONG_LONG, 0, comm_mpi(j->c));
    j->step = (long)step;
    if (bcast_floats(j, p->params, p->total, err) || bcast_floats(j, p->m, p->total, err) ||
        bcast_floats(j, p->v, p->total, err))
        return -1;
    trn_adamw_config_default(&j->opt);
    j->opt.sched.lr = (float)j->cfg.lr;
    j->opt.sched.min_lr = (float)j->cfg.min_lr;
    j->opt.sched.warmup_steps = j->cfg.warmup;
    j->opt.sched.total_steps = j->cfg.steps;
    j->opt.weight_decay = (float)j->cfg.weight_decay;
    j->opt.clip_norm = (float)j->cfg.clip;
    if (trn_adamw_config_check(&j->opt, err)) return rv_fail_wrap(err, "config: train");
    return tr_checksum(j, err);
}

/* Binds the shards to the model and loads or encodes their memory. */
static int setup_memory(tr_job *j, char *err) {
    char mine[RV_ERR_MAX] = "";
    size_t encoded = 0, items = 0;
    double t0 = rv_now();
    for (size_t i = 0; i < j->l->n_stores && !mine[0]; i++) {
        if (j->owner[i] != j->rank) continue;
        size_t n = 0;
        if (tr_shard_bind(j->shards[i], j->tok, &j->model, mine) ||
            tr_shard_load_memory(j->shards[i], (uint32_t)j->step, &n, NULL, mine))
            break;
        encoded += n;
        items += tr_shard_count(j->shards[i]);
    }
    if (items)
        rv_info("memory: %zu items, %zu encoded now, the others loaded (%.1f s)", items, encoded,
                rv_now() - t0);
    return comm_agree(j->c, mine, err);
}

static int write_checkpoint(tr_job *j, job_run *run, const char *config_json, char *err) {
    char tmp[2 * TR_PATH_MAX], path[3 * TR_PATH_MAX], done[2 * TR_PATH_MAX];
    size_t tok_len;
    const void *tok = trn_tok_model(j->tok, &tok_len);
    if (job_ckpt_begin(run, (uint64_t)j->step, tmp, sizeof tmp, err)) return -1;
    snprintf(path, sizeof path, "%s/model.ckpt", tmp);
    trn_ckpt_meta meta = {
        (uint64_t)j->step, config_json, strlen(config_json), tok, tok_len, NULL, 0};
    if (trn_ckpt_save(path, &j->model.params, &meta, err) ||
        tr_control(j, REVEAL__CONTROL_COMMAND__CHECKPOINT, (uint64_t)j->step, tmp, err) ||
        job_ckpt_commit(run, (uint64_t)j->step, (int)j->cfg.keep_last, done, sizeof done, err))
        return rv_fail_wrap(err, "checkpoint at step %ld", j->step);
    rv_info("checkpoint %s", done);
    return 0;
}

static void log_step(const tr_job *j, const tr_step_stats *s, double ex_per_s, double eta_s) {
    rv_info("step %ld/%ld %s loss %.4f gen %.4f con %.4f | acc %.2f p(gold) %.3f recall %.2f "
            "1/tau %.2f | lr %.2e | edit %.1f refresh %.1f retrieval %.1f fusion %.1f backward "
            "%.1f allreduce %.1f ms | %.1f ex/s | ETA %.0f s",
            j->step, j->cfg.steps, s->warm ? "warm" : "mem ", s->loss, s->gen, s->con, s->train_acc,
            s->p_gold, s->recall, s->inv_tau, s->lr, s->ms.edit, s->ms.refresh, s->ms.retrieval,
            s->ms.fusion, s->ms.backward, s->ms.allreduce, ex_per_s, eta_s);
}

static int metrics_line(tr_job *j, job_run *run, const tr_step_stats *s, char *err) {
    char line[1024];
    snprintf(line, sizeof line,
             "{\"step\": %ld, \"warm\": %s, \"loss\": %.9g, \"gen\": %.9g, \"con\": %.9g, "
             "\"train_acc\": %.6g, \"p_gold\": %.9g, \"recall\": %.6g, \"inv_tau\": %.9g, "
             "\"lr\": %.9g, \"grad_norm\": %.9g, \"ms\": {\"edit\": %.3f, \"refresh\": %.3f, "
             "\"retrieval\": %.3f, \"fusion\": %.3f, \"backward\": %.3f, \"allreduce\": %.3f, "
             "\"total\": %.3f}}",
             j->step, s->warm ? "true" : "false", s->loss, s->gen, s->con, s->train_acc, s->p_gold,
             s->recall, s->inv_tau, (double)s->lr, (double)s->grad_norm, s->ms.edit, s->ms.refresh,
             s->ms.retrieval, s->ms.fusion, s->ms.backward, s->ms.allreduce, s->ms.total);
    return job_metrics_append(run, line, err);
}

static int final_eval(tr_job *j, char *err) {
    tr_task dev;
    int32_t *q_ids = NULL;
    rvm_input *queries = NULL;
    tr_eval on = {0}, off = {0};
    int rc = -1;
    if (tr_task_load(&dev, j->cfg.dev, j->l, (uint32_t)j->cfg.image_size, err)) return -1;
    tr_eval_opts o = {1, j->cfg.topk, NULL}, o_off = {0, j->cfg.topk, NULL};
    if (tr_task_tokenize(j, &dev, &q_ids, &queries, NULL, NULL, err) ||
        tr_evaluate(j, &dev, queries, &o, &on, err) ||
        tr_evaluate(j, &dev, queries, &o_off, &off, err))
        goto cleanup;
    printf("%s: %zu questions after %ld updates\n", j->cfg.dev, dev.n, j->step);
    tr_print_table(&on.by_type, &off.by_type);
    printf("recall@%ld of the gold item: %.3f\n", j->cfg.topk, on.recall);
    fflush(stdout);
    rc = 0;
cleanup:
    tr_eval_free(&on);
    tr_eval_free(&off);
    free(q_ids);
    free(queries);
    tr_task_free(&dev);
    return rc;
}

void tr_job_free(tr_job *j) {
    if (j->l && j->shards) {
        tr_exchange_release(j);
        for (size_t i = 0; i < j->l->n_stores; i++) tr_shard_free(j->shards[i]);
    }
    free(j->shards);
    free(j->owner);
    free(j->replies);
    free(j->reply_msgs);
    wrk_layout_free(j->l);
    if (j->model.params.params) rvm_model_free(&j->model);
    trn_tok_free(j->tok);
    tr_task_free(&j->task);
    free(j->q_ids);
    free(j->queries);
    free(j->a_ids);
    free(j->answers);
    free(j->order);
    for (size_t i = 0; i < j->n_rounds; i++) free(j->rounds[i]);
    free(j->rounds);
    tr_task_free(&j->orig);
    comm_free(j->c);
}

/* Rank 0's loop. Returns an exit code. */
static int coordinate(tr_job *j, job_run *run, const char *config_json, char *err) {
    double t_start = rv_now();
    long first = j->step, R = j->cfg.edit_every;
    /* a resumed run: the texts and answers of the round active at the checkpoint (its vectors
     * are in the checkpoint's stores) */
    if (j->n_rounds && first > R && tr_edits_apply(j, (first - 1) / R * R, 0, err))
        return TR_EXIT_FAIL;
    while (j->step < j->cfg.steps) {
        double edit_ms = 0, refresh_ms = 0, t0 = rv_now();
        /* also at the first memory-training update: until then the memory holds vectors of
         * the encoder as it was at the start (or at the last edit), and retrieval over them
         * finds little */
        int refresh = j->cfg.refresh_every > 0 && j->step > 0 && j->step >= j->cfg.warm_steps &&
                      (j->step % j->cfg.refresh_every == 0 || j->step == j->cfg.warm_steps);
        if (j->n_rounds && j->step > 0 && j->step % R == 0) {
            /* an edit's vectors are needed only if read before the next refresh: not in the
             * warm start (it reads none, and a refresh ends it) nor just before a refresh */
            int warm_refreshed = j->step < j->cfg.warm_steps && j->cfg.refresh_every > 0;
            if (tr_edits_apply(j, j->step, !refresh && !warm_refreshed, err)) return TR_EXIT_FAIL;
            edit_ms = 1e3 * (rv_now() - t0);
        }
        if (refresh) {
            t0 = rv_now();
            if (tr_control(j, REVEAL__CONTROL_COMMAND__REFRESH, (uint64_t)j->step, NULL, err))
                return TR_EXIT_FAIL;
            refresh_ms = 1e3 * (rv_now() - t0);
        }
        tr_step_stats s;
        if (tr_train_step(j, &s, err)) return TR_EXIT_FAIL;
        s.ms.edit = edit_ms;
        s.ms.refresh = refresh_ms;
        s.ms.total += edit_ms + refresh_ms;
        if (metrics_line(j, run, &s, err)) return TR_EXIT_FAIL;
        double el = rv_now() - t_start, done = (double)(j->step - first);
        if (j->step % j->cfg.log_every == 0 || j->step == j->cfg.steps)
            log_step(j, &s, done * j->cfg.batch / el, el / done * (double)(j->cfg.steps - j->step));
        int sig = job_signal_pending();
        if (sig || (j->cfg.ckpt_every > 0 && j->step % j->cfg.ckpt_every == 0) ||
            j->step == j->cfg.steps) {
            if (write_checkpoint(j, run, config_json, err)) return TR_EXIT_FAIL;
            if (sig) {
                rv_info("signal %d: stopped at step %ld after a checkpoint (exit %d)", sig, j->step,
                        TR_EXIT_STOPPED);
                return TR_EXIT_STOPPED;
            }
        }
    }
    if (j->n_rounds && j->cfg.steps > R) {
        /* back to the stored knowledge for the evaluation */
        if (tr_edits_apply(j, -1, 0, err) ||
            tr_control(j, REVEAL__CONTROL_COMMAND__REFRESH, (uint64_t)j->step, NULL, err))
            return TR_EXIT_FAIL;
    }
    if (j->cfg.dev[0] && final_eval(j, err)) return TR_EXIT_FAIL;
    return TR_EXIT_OK;
}

int tr_train_main(const tr_train_args *a) {
    tr_job j = {0};
    char err[RV_ERR_MAX] = "", mine[RV_ERR_MAX] = "", found[2 * TR_PATH_MAX] = "";
    char work[2 * TR_PATH_MAX];
    job_run *run = NULL;
    char *config_json = NULL;
    trn_ckpt ck;
    int have_ck = 0, code = TR_EXIT_FAIL, rc, lone = 0;
    if (comm_create("train", &j.c, err)) {
        fprintf(stderr, "reveal train: %s\n", err);
        return TR_EXIT_FAIL;
    }
    j.rank = comm_rank(j.c);
    j.size = comm_size(j.c);
    j.W = j.size - 1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[rank %d]", j.rank);
    rv_log_set_prefix(prefix);
    job_signals_install();
    tr_config_default(&j.cfg);
    if (tr_config_load(&j.cfg, a->config_path, a->sets, a->n_sets, mine) == 0 && a->keep_last >= 0)
        j.cfg.keep_last = a->keep_last;
    j.timeout_s = j.cfg.timeout_s;
    job_resume_mode mode = JOB_RESUME_AUTO;
    if (!mine[0] && job_resume_parse(a->resume ? a->resume : "auto", &mode, mine) == 0 &&
        j.rank == 0 && job_run_open(a->run_dir, &run, mine) == 0) {
        uint64_t step = 0;
        job_ckpt_find(run, mode, a->resume, found, sizeof found, &step, mine);
    }
    /* every rank reads the same config: rank 0 alone reports what is wrong with it */
    if ((rc = comm_agree(j.c, j.rank == 0 ? mine : "", err)) ||
        tr_bcast_string(&j, found, sizeof found, err) || tr_job_layout(&j, j.cfg.layout, err))
        goto done;
    if (found[0]) rv_info("resuming from %s", found);
    /* rank 0's team may be wider than a worker's: the workers wait while it runs the step's
     * forward and backward, the bulk of an update */
    trn_threads_info threads;
    mine[0] = 0;
    int bad_threads = trn_threads_setup(j.rank == 0 ? (int)j.cfg.threads : 0, &threads, mine);
    if ((rc = comm_agree(j.c, bad_threads ? mine : "", err))) goto done;
    if (j.rank == 0) {
        char line[256];
        trn_threads_describe(&threads, line, sizeof line);
        rv_info("%s", line);
    }
    /* working copies of the stores: fresh from the user's stores, or the checkpoint's */
    snprintf(work, sizeof work, "%s/stores", a->run_dir);
    for (size_t i = 0; i < j.l->n_stores && !mine[0]; i++) {
        if (j.owner[i] != j.rank) continue;
        const wrk_layout_store *st = &j.l->stores[i];
        char dst[3 * TR_PATH_MAX], src[3 * TR_PATH_MAX];
        snprintf(dst, sizeof dst, "%s/%s-%u", work, j.l->sources[st->source].name, st->shard);
        if (rv_remove_tree(dst, mine)) break;
        if (found[0]) {
            snprintf(src, sizeof src, "%s/stores/%s-%u", found, j.l->sources[st->source].name,
                     st->shard);
            if (rv_mkdirs(work, mine) || copy_tree(src, dst, mine)) break;
        }
    }
    if ((rc = comm_agree(j.c, mine, err)) || tr_job_open_shards(&j, work, 1, err)) goto done;
    if (j.rank == 0) {
        if (tr_task_load(&j.task, j.cfg.train, j.l, (uint32_t)j.cfg.image_size, mine) == 0 &&
            !(j.order = calloc(j.task.n, sizeof *j.order)))
            rv_fail(mine, "out of memory");
        if (!mine[0] && found[0]) {
            char path[3 * TR_PATH_MAX];
            snprintf(path, sizeof path, "%s/model.ckpt", found);
            if (trn_ckpt_open(path, &ck, mine) == 0) have_ck = 1;
        }
    }
    if ((rc = comm_agree(j.c, mine, err))) goto done;
    int resumed = found[0] != 0;
    if (tr_setup_tokenizer(&j, resumed, resumed && j.rank == 0 ? &ck : NULL, err) ||
        tr_setup_model(&j, resumed && j.rank == 0 ? &ck : NULL, err) || setup_memory(&j, err))
        goto done;
    /* from here on a failure is one rank's own: it is reported there and ends the job */
    lone = 1;
    if (j.rank != 0) {
        code = tr_worker_loop(&j, err) ? TR_EXIT_FAIL : TR_EXIT_OK;
        goto done;
    }
    if (tr_task_tokenize(&j, &j.task, &j.q_ids, &j.queries, &j.a_ids, &j.answers, err) ||
        tr_edits_open(&j, err))
        goto done;
    config_json = tr_config_json(&j.cfg);
    char *resolved = NULL;
    if (!config_json) {
        rv_fail(err, "out of memory");
        goto done;
    }
    {
        size_t need = strlen(config_json) + 4096 + j.l->n_stores * (2 * TR_PATH_MAX);
        resolved = malloc(need);
        if (!resolved) {
            rv_fail(err, "out of memory");
            goto done;
        }
        size_t at =
            (size_t)snprintf(resolved, need,
                             "{\"git_revision\": \"%s\", \"ranks\": %d, \"vocab\": %d, "
                             "\"parameters\": %zu, \"stores\": [",
                             job_git_revision(), j.size, j.mcfg.vocab, j.model.params.total);
        for (size_t i = 0; i < j.l->n_stores; i++) {
            const wrk_layout_store *st = &j.l->stores[i];
            at += (size_t)snprintf(resolved + at, need - at,
                                   "%s{\"rank\": %d, \"source\": \"%s\", \"shard\": %u, "
                                   "\"path\": \"%s\"}",
                                   i ? ", " : "", j.owner[i], j.l->sources[st->source].name,
                                   st->shard, st->path);
            rv_info("store %s (source %s, shard %u) on rank %d", st->path,
                    j.l->sources[st->source].name, st->shard, j.owner[i]);
        }
        snprintf(resolved + at, need - at, "], \"config\": %s}", config_json);
    }
    if (job_run_write_config(run, resolved, err) ||
        job_metrics_truncate(run, (uint64_t)j.step, err)) {
        free(resolved);
        goto done;
    }
    free(resolved);
    rv_info("training: %zu questions, %ld updates from step %ld, %d ranks, %zu parameters, "
            "vocabulary %d",
            j.task.n, j.cfg.steps, j.step, j.size, j.model.params.total, j.mcfg.vocab);
    code = coordinate(&j, run, config_json, err);
    if (code != TR_EXIT_FAIL) {
        char why[RV_ERR_MAX];
        if (tr_control(&j, REVEAL__CONTROL_COMMAND__SHUTDOWN, (uint64_t)j.step, NULL, why)) {
            snprintf(err, sizeof err, "%s", why);
            code = TR_EXIT_FAIL;
        }
    }
done:
    /* a set-up failure every rank agreed on is printed once, by rank 0 */
    if (code == TR_EXIT_FAIL && err[0] && (j.rank == 0 || lone))
        fprintf(stderr, "reveal train: %s\n", err);
    if (code == TR_EXIT_FAIL && lone) code = TR_EXIT_ABORT;
    if (have_ck) trn_ckpt_close(&ck);
    free(config_json);
    job_run_close(run);
    tr_job_free(&j);
    return code;
}
