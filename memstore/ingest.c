/* memstore/ingest.c — the ingest loop: read a JSONL/TSV file line by line, turn each line into
 * a KnowledgeItem (decoding its image, if any), and put it into the store in WriteBatches.
 *
 * Consistency rests on the store: each WriteBatch carries its items together with the
 * counters they change, so a crash or a failed write leaves the store as of the last
 * committed batch. Batches between the first and the last are committed without fsync (the
 * OS still has them after kill -9; a power cut may lose them, and re-running the command
 * redoes them, since ingest is idempotent); the last one is synced before we report success.
 */
#define _GNU_SOURCE
#include "memstore.h"
#include "proto.h"
#include "rv.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mem_ingest_options_init(mem_ingest_options *o) {
    memset(o, 0, sizeof *o);
    o->format = MEM_FORMAT_AUTO;
    o->max_errors = MEM_MAX_ERRORS_DEFAULT;
    o->batch = MEM_BATCH_DEFAULT;
}

/* 1 when dir exists and holds at least one entry, 0 when it is absent or empty. */
static int dir_has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The store's configuration must match what the command asked for; unset options adopt the
 * store's values. */
static int check_config(const mem_config *have, const mem_ingest_options *o, char *err) {
    if (have->type != o->type)
        return rv_fail(err,
                       "%s: the store holds %s items, not %s; ingest %s items into another "
                       "--store",
                       o->store_dir, mem_type_name(have->type), mem_type_name(o->type),
                       mem_type_name(o->type));
    if (o->image_size && have->image_size != o->image_size)
        return rv_fail(err, "%s: the store was created with --image-size %u, not %u", o->store_dir,
                       have->image_size, o->image_size);
    if (o->name && strcmp(have->name, o->name) != 0)
        return rv_fail(err, "%s: the store is named \"%s\", not \"%s\"", o->store_dir, have->name,
                       o->name);
    return 0;
}

static int check_options(const mem_ingest_options *o, mem_format *format, char *err) {
    if (o->type < REVEAL__SOURCE_TYPE__IMAGE_TEXT || o->type > REVEAL__SOURCE_TYPE__TEXT)
        return rv_fail(err, "unknown item type %d", (int)o->type);
    if (!o->input || !o->input[0]) return rv_fail(err, "no input file given");
    if (!o->store_dir || !o->store_dir[0]) return rv_fail(err, "no store directory given");
    if (o->image_size > MEM_IMAGE_SIZE_MAX)
        return rv_fail(err, "image size %u is more than the %u allowed", o->image_size,
                       MEM_IMAGE_SIZE_MAX);
    if (o->name && (!o->name[0] || strlen(o->name) >= MEM_NAME_MAX))
        return rv_fail(err, "store name must have 1 to %d bytes", MEM_NAME_MAX - 1);
    *format = o->format;
    if (*format == MEM_FORMAT_AUTO)
        *format = ends_with(o->input, ".tsv") ? MEM_FORMAT_TSV : MEM_FORMAT_JSONL;
    if (*format == MEM_FORMAT_TSV && o->type != REVEAL__SOURCE_TYPE__KG_TRIPLE)
        return rv_fail(err, "TSV input holds kg triples only; use JSONL for %s items",
                       mem_type_name(o->type));
    return 0;
}

/* Removes what creations killed before their rename left beside the store: directories
 * named "<base>.creating.<pid>" whose process no longer exists. */
static void remove_stale_creations(const char *parent, const char *base) {
    DIR *d = opendir(parent);
    if (!d) return;
    char prefix[NAME_MAX + 16], path[PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s.creating.", base);
    size_t n = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, n) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + n, &end, 10);
        if (*end || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* still creating */
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        rv_remove_tree(path, NULL);
    }
    closedir(d);
}

/* Creates a store atomically: it is built in a sibling directory and renamed into place, so a
 * kill during creation (RocksDB adds column families one at a time) leaves no store or a whole
 * one, never a database with some of its families. */
static int create_store(const char *store_dir, const mem_config *cfg, mem_store **s, char *err) {
    char dir[PATH_MAX], parent[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", store_dir);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0;
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : dir;
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        slash[1] = 0;
    else
        *slash = 0;
    remove_stale_creations(parent, base);
    snprintf(tmp, sizeof tmp, "%s.creating.%d", dir, (int)getpid());
    if (mem_open_or_create(tmp, cfg, s, err) != 0) {
        rv_remove_tree(tmp, NULL);
        return rv_fail_wrap(err, "cannot create the store %s", dir);
    }
    mem_close(*s);
    *s = NULL;
    if (rename(tmp, dir) != 0) {
        rv_fail(err, "%s: cannot move the new store into place: %s", dir, strerror(errno));
        rv_remove_tree(tmp, NULL);
        return -1;
    }
    if (rv_fsync_dir(parent, err) != 0) return -1;
    return mem_open(dir, 0, s, err);
}

/* Opens the store for this ingest, creating it with the command's configuration when the
 * directory is absent or empty. A dry run never creates one: *s stays NULL and cfg tells what
 * a new store would be. */
static int open_store(const mem_ingest_options *o, mem_store **s, mem_config *cfg, char *err) {
    *s = NULL;
    memset(cfg, 0, sizeof *cfg);
    if (dir_has_entries(o->store_dir)) {
        if (mem_open(o->store_dir, o->dry_run, s, err) != 0) return -1;
        *cfg = *mem_get_config(*s);
        if (check_config(cfg, o, err) != 0) {
            mem_close(*s);
            *s = NULL;
            return -1;
        }
        return 0;
    }
    cfg->type = o->type;
    snprintf(cfg->name, sizeof cfg->name, "%s", o->name ? o->name : mem_type_name(o->type));
    cfg->image_size = o->image_size ? o->image_size : MEM_IMAGE_SIZE_DEFAULT;
    if (o->dry_run) return 0;
    return create_store(o->store_dir, cfg, s, err);
}

/* Everything one run needs while reading lines. */
typedef struct {
    const mem_ingest_options *o;
    mem_format format;
    mem_store *store;
    mem_config cfg;
    mem_batch *batch;
    size_t batch_items; /* commit once this many items are staged */
    int unsynced;       /* a batch was committed without sync since the last sync */
    uint64_t staged_added, staged_replaced; /* outcomes of the batch not yet committed */
    char input_dir[PATH_MAX];
    char input_abs[PATH_MAX];
    mem_line_item li;
    mem_ingest_counts *c;
    double t0;
} ingest_run;

static void report_line(ingest_run *run, uint64_t lineno, const char *reason) {
    char msg[RV_ERR_MAX + PATH_MAX + 32];
    snprintf(msg, sizeof msg, "%s:%llu: %s", run->o->input, (unsigned long long)lineno, reason);
    run->c->rejected++;
    if (run->o->report) run->o->report(run->o->ctx, msg);
}

/* Commits the staged items. The last commit of a run is synced; when it has nothing to
 * write (every item unchanged), the WAL is synced instead if earlier commits were not. */
static int commit_batch(ingest_run *run, int sync, char *err) {
    int rc = 0;
    if (run->batch && mem_batch_count(run->batch) > 0) {
        rc = mem_batch_commit(run->batch, sync, err);
        if (rc == 0) run->unsynced = !sync;
    } else if (sync && run->unsynced) {
        rc = mem_sync(run->store, err);
        if (rc == 0) run->unsynced = 0;
    }
    if (rc == 0) { /* the counts tell what is stored, so staged items count once committed */
        run->c->added += run->staged_added;
        run->c->replaced += run->staged_replaced;
    }
    run->staged_added = run->staged_replaced = 0;
    if (rc == 0) return 0; /* the batch is empty again and is reused */
    /* A failed batch is dropped: its items are not in the store, and nothing retries it or
     * syncs after it (RocksDB refuses further WAL work once a write has failed). */
    if (run->batch) mem_batch_free(run->batch);
    run->batch = NULL;
    run->unsynced = 0;
    return -1;
}

/* Turns one parsed line into a stored (or, on a dry run, validated) item. Returns 0 when
 * done, 1 when the line is bad (reason filled), -1 on a store failure (err filled). */
static int ingest_item(ingest_run *run, uint64_t lineno, char *reason, char *err) {
    Reveal__KnowledgeItem *item = &run->li.item;
    Reveal__Image image = REVEAL__IMAGE__INIT;
    Reveal__Provenance prov = REVEAL__PROVENANCE__INIT;
    unsigned char *pixels = NULL;
    int rc = 1;
    if (run->li.image) {
        char path[PATH_MAX];
        const char *p = run->li.image;
        if (p[0] != '/') {
            if (snprintf(path, sizeof path, "%s/%s", run->input_dir, p) >= (int)sizeof path) {
                rv_fail(reason, "image path \"%s\" is too long", p);
                goto cleanup;
            }
            p = path;
        }
        if (mem_image_load(p, run->cfg.image_size, &pixels, reason) != 0) {
            rv_fail_wrap(reason, "image");
            goto cleanup;
        }
        image.width = image.height = run->cfg.image_size;
        image.channels = 3;
        image.pixels.data = pixels;
        image.pixels.len = (size_t)run->cfg.image_size * run->cfg.image_size * 3;
        item->image = &image;
    }
    prov.file = run->input_abs;
    prov.line = lineno;
    item->provenance = &prov;
    /* A dry run into a new store has no store to ask; its type and image size are the ones
     * the item was built for, so the item checks of the store are all that is left. */
    if (run->store ? mem_validate_item(run->store, item, reason) : rv_item_check(item, reason))
        goto cleanup;
    if (run->o->dry_run) {
        rc = 0;
        run->c->valid++;
        goto cleanup;
    }
    if (!run->batch && !(run->batch = mem_batch_new(run->store))) {
        rc = rv_fail(err, "%s: out of memory for a write batch", run->o->store_dir);
        goto cleanup;
    }
    uint64_t id;
    int outcome;
    if (mem_batch_put_item(run->batch, item, &id, &outcome, err) != 0) {
        rc = rv_fail_wrap(err, "%s:%llu", run->o->input, (unsigned long long)lineno);
        goto cleanup;
    }
    run->c->valid++;
    if (outcome == MEM_PUT_ADDED) run->staged_added++;
    if (outcome == MEM_PUT_UNCHANGED) run->c->unchanged++;
    if (outcome == MEM_PUT_REPLACED) run->staged_replaced++;
    rc = 0;
    if (mem_batch_count(run->batch) >= run->batch_items) rc = commit_batch(run, 0, err);
cleanup:
    item->image = NULL;
    item->provenance = NULL;
    free(pixels);
    return rc;
}

static void progress(ingest_run *run, mem_reader *r) {
    run->c->bytes_read = mem_reader_offset(r);
    run->c->seconds = rv_now() - run->t0;
    if (run->o->progress) run->o->progress(run->o->ctx, run->c);
}

int mem_ingest(const mem_ingest_options *o, mem_ingest_counts *c, char *err) {
    ingest_run run = {.o = o, .c = c};
    mem_reader *r = NULL;
    int rc = -1;
    memset(c, 0, sizeof *c);
    mem_line_item_init(&run.li);
    run.t0 = rv_now();
    if (check_options(o, &run.format, err) != 0) return -1;
    size_t line_max = o->line_max ? o->line_max : MEM_LINE_MAX;
    run.batch_items = o->batch ? o->batch : MEM_BATCH_DEFAULT;
    size_t field_max = o->field_max ? o->field_max : MEM_FIELD_MAX;
    if (mem_reader_open(o->input, line_max, &r, err) != 0) return -1;
    c->bytes_total = mem_reader_size(r);
    snprintf(run.input_dir, sizeof run.input_dir, "%s", o->input);
    char *slash = strrchr(run.input_dir, '/');
    if (!slash)
        snprintf(run.input_dir, sizeof run.input_dir, ".");
    else if (slash == run.input_dir)
        slash[1] = 0; /* a file in "/" */
    else
        *slash = 0;
    if (!realpath(o->input, run.input_abs))
        snprintf(run.input_abs, sizeof run.input_abs, "%s", o->input);
    if (open_store(o, &run.store, &run.cfg, err) != 0) goto cleanup;

    char reason[RV_ERR_MAX];
    double last_progress = run.t0;
    for (uint64_t n = 0;; n++) {
        char *line;
        size_t len;
        uint64_t lineno;
        int got = mem_reader_next(r, &line, &len, &lineno, err);
        if (got < 0) goto cleanup;
        if (got == MEM_LINE_EOF) break;
        if (got == MEM_LINE_TOO_LONG) {
            c->read++;
            rv_fail(reason, "line is longer than %zu bytes", line_max);
            report_line(&run, lineno, reason);
        } else {
            int parsed = mem_parse_line(&run.li, o->type, run.format, line, len, field_max, reason);
            if (parsed != 0) c->read++;
            if (parsed < 0) report_line(&run, lineno, reason);
            if (parsed > 0) {
                int done = ingest_item(&run, lineno, reason, err);
                if (done < 0) goto cleanup;
                if (done > 0) report_line(&run, lineno, reason);
            }
        }
        if (c->rejected > o->max_errors) {
            rv_fail(err,
                    "stopped at %s:%llu after %llu bad lines (--max-errors %llu); items "
                    "before it are stored",
                    o->input, (unsigned long long)lineno, (unsigned long long)c->rejected,
                    (unsigned long long)o->max_errors);
            goto cleanup;
        }
        if ((n & 255) == 0 && rv_now() - last_progress >= 1.0) {
            last_progress = rv_now();
            progress(&run, r);
        }
    }
    rc = 0;
cleanup:
    /* What was read before a stop is committed too; a failed commit turns success into
     * failure but never hides the first error. */
    if (run.store && !o->dry_run) {
        char cerr[RV_ERR_MAX];
        if (commit_batch(&run, 1, cerr) != 0 && rc == 0) {
            snprintf(err, RV_ERR_MAX, "%s", cerr);
            rc = -1;
        }
    }
    if (run.batch) mem_batch_free(run.batch);
    if (run.store) {
        mem_stats st;
        char serr[RV_ERR_MAX];
        if (mem_get_stats(run.store, &st, serr) == 0) c->store_items = st.items;
        mem_close(run.store);
    }
    c->bytes_read = mem_reader_offset(r);
    c->seconds = rv_now() - run.t0;
    mem_reader_close(r);
    mem_line_item_free(&run.li);
    return rc;
}
