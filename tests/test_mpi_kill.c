/* tests/test_mpi_kill.c — a worker killed with SIGKILL while the coordinator waits on it ends
 * the job non-zero within 30 s, with a message naming the lost rank, and its store is intact
 * (opens, same item count). Two runs: plain mpirun, which tears the job down itself when a rank
 * dies (its message names the rank; rank 0's set-up log maps the rank to its source), and
 * mpirun --enable-recovery, which keeps the job alive so the coordinator's own deadline must
 * find the lost worker and name it with its source. A third run hangs rank 0 instead: the
 * workers' idle deadline must end the job, naming rank 0. */
#include "test_mpi_util.h"

#include <errno.h>

enum { N_ITEMS = 100 };

static int job(int argc, char **argv) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    char path[256];
    snprintf(path, sizeof path, "%s/pid-%s", argv[2], rank ? rank : "x");
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    t_write_text(path, pid);
    int hang = argc > 3 && !strcmp(argv[3], "hang");
    /* In "hang" mode rank 0 goes silent after the first answer: the workers must give up. */
    wrk_role_options o = {.send_timeout_s = 30, .idle_timeout_s = hang ? 3 : 120};
    comm *c = t_job_start(&argc, &argv, argv[1], &o, NULL);
    char err[RV_ERR_MAX];
    wrk_client *cl;
    if (wrk_client_open(c, argv[1], 5, &cl, err)) {
        rv_error("%s", err);
        t_job_exit(c, 1, NULL);
    }
    /* Search until a worker fails us; the driver kills one after the first answer. */
    float q[T_DK];
    uint64_t seed = 1;
    const uint32_t k = 10;
    double start = rv_now();
    for (uint64_t step = 1; rv_now() - start < 120; step++) {
        t_unit(q, T_DK, &seed);
        wrk_hits h;
        if (wrk_client_search(cl, step, q, 1, T_DK, &k, &h, err)) {
            rv_error("step %llu: %s", (unsigned long long)step, err);
            snprintf(path, sizeof path, "%s/exit-0", argv[2]);
            t_write_text(path, "1\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        wrk_hits_free(&h);
        if (step == 1) {
            snprintf(path, sizeof path, "%s/ready", argv[2]);
            t_write_text(path, "1\n");
            if (hang) sleep(100);
        }
    }
    rv_error("no worker was lost in 120 s");
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

/* recovery: Open MPI 4.1's mpirun --enable-recovery exits 0 even after MPI_Abort(1), so the
 * run is judged by the code rank 0 recorded before aborting. hang: nobody is killed; rank 0
 * goes silent instead. */
static void run(const char *mpirun, const char *self, const char *const *extra, const char *name,
                const char *expect, int recovery, int hang) {
    char err[RV_ERR_MAX];
    rv_remove_tree("kill_work/run", err);
    REQUIRE(rv_mkdirs("kill_work/run", err) == 0);
    const char *args[] = {"kill_work/layout.json", "kill_work/run", hang ? "hang" : NULL, NULL};
    double t0 = rv_now();
    pid_t job_pid = mpi_start(mpirun, 3, extra, self, args, "kill_work/out.txt");
    struct stat sb;
    while (stat("kill_work/run/ready", &sb) != 0 && rv_now() - t0 < 120) usleep(20000);
    char *pid_text = mpi_slurp("kill_work/run/pid-2");
    int victim = atoi(pid_text);
    free(pid_text);
    CHECKF(victim > 0, "%s: no pid for rank 2", name);
    double killed = rv_now();
    if (victim > 0 && !hang)
        CHECKF(kill(victim, SIGKILL) == 0, "%s: kill: %s", name, strerror(errno));
    mpi_run r = mpi_wait(job_pid, 60 + (killed - t0), t0, "kill_work/out.txt");
    double after = t0 + r.seconds - killed;
    CHECKF(r.status != -1, "%s: the job did not end", name);
    if (recovery) {
        char *code = mpi_slurp("kill_work/run/exit-0");
        CHECKF(atoi(code) == 1, "%s: rank 0 recorded \"%s\"", name, code);
        free(code);
    } else {
        CHECKF(r.status != 0, "%s: job ended with %d", name, r.status);
    }
    CHECKF(after < 30, "%s: the job ended %.1f s after the fault", name, after);
    CHECKF(strstr(r.out, expect) != NULL, "%s: no \"%s\" in the output", name, expect);
    CHECK(strstr(r.out, "rank 2 (worker kg shard 1) serves store kill_work/kg-1") != NULL);
    CHECKF(t_store_items("kill_work/kg-1") == N_ITEMS, "%s: store kg-1 damaged", name);
    printf("%s: ended %.1f s after the fault, status %d\n", name, after, r.status);
    if (check_failures || getenv("REVEAL_TEST_VERBOSE"))
        fprintf(stderr, "---- %s output\n%s----\n", name, r.out);
    free(r.out);
}

int main(int argc, char **argv) {
    if (mpi_in_job()) return job(argc, argv);
    REQUIRE(argc == 2);
    char err[RV_ERR_MAX];
    rv_remove_tree("kill_work", err);
    REQUIRE(rv_mkdirs("kill_work", err) == 0);
    t_build_store("kill_work/kg-0", REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg-0", N_ITEMS, 0, 1);
    t_build_store("kill_work/kg-1", REVEAL__SOURCE_TYPE__KG_TRIPLE, "kg-1", N_ITEMS, 0, 2);
    t_write_text("kill_work/layout.json",
                 "{\"sources\": [{\"name\": \"kg\", \"type\": \"kg\", "
                 "\"stores\": [\"kill_work/kg-0\", \"kill_work/kg-1\"]}]}");
    run(argv[1], argv[0], NULL, "plain mpirun", "process rank 2 with PID", 0, 0);
    const char *recovery[] = {"--enable-recovery", NULL};
    run(argv[1], argv[0], recovery, "mpirun --enable-recovery",
        "no TopKReply from rank 2 (worker kg shard 1) within 5.0 s", 1, 0);
    run(argv[1], argv[0], NULL, "rank 0 hung",
        "error: no message from rank 0 (coordinator) within 3.0 s", 0, 1);
    return check_report("mpi_kill");
}
