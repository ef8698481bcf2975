/*
 * server_resume.c - "Nothing lost" (hardening issue): training checkpoints
 * and resume after a crash.
 *
 * Integration: a warm-started digits job is killed with SIGKILL three
 * times at seeded random moments and the daemon restarted on the same
 * database each time; the job must finish succeeded with exactly one
 * metrics row per epoch, the database must pass PRAGMA integrity_check
 * (after every kill and at the end), the accuracy must match an
 * uninterrupted run of the same job on a fresh daemon, and the version
 * trained before the kills must still predict bit-identically.  A cancel
 * requested just before a crash ends the job cancelled after the restart.
 *
 * Store level: checkpoints round trip, rewinding a resumed job's metrics,
 * the resumed claim order, the base version of a warm start, and cancel
 * of a job that waits to be resumed.
 */
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server_common.h"
#include "store/store.h"

/* ---- helpers ----------------------------------------------------------- */

/* D is the daemon that gets killed; an uninterrupted reference runs
 * beside it (it_daemon), and it_teardown cleans up both. */
TestSuite(resume, .fini = it_teardown, .timeout = 300);

/* One integer from the database (read-only; the daemon may be down). */
static long long db_int(const char *path, const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *path, const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Rows to predict: the first digits of the data set, as JSON. */
static const char *PREDICT_BODY_FMT = "{\"version\":%d,\"inputs\":["
    "[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,"
    "0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0],"
    "[0,0,0,12,13,5,0,0,0,0,0,11,16,9,0,0,0,0,3,15,16,6,0,0,0,7,15,16,16,2,0,0,0,0,1,16,16,3,0,"
    "0,0,0,1,16,16,6,0,0,0,0,1,16,16,6,0,0,0,0,0,11,16,10,0,0],"
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,0,1,2,3,4,"
    "5,6,7,8,9,10,11,12,13,14,15,16,0,1,2,3,4,5,6,7,8,9,10,11,12,13]]}";

static char *predict(const test_daemon *d, int version)
{
    char body[1024];
    snprintf(body, sizeof body, PREDICT_BODY_FMT, version);
    ts_resp r = td_call(d, "POST", "/v1/models/digits/predict", body, 200);
    char *out = strdup(r.body);
    ts_resp_free(&r);
    return out;
}

/* The killed job: long enough (about 20 s of training, scaled like the
 * kill moments, whatever the machine's speed: its epoch count is sized
 * from version 1's fastest epoch; three kills need 12 s at most, and 20
 * leaves room for an epoch time measured up to twice too slow while
 * another test had the CPU) to be killed three times, warm-started
 * from version 1 so the resumed warm start is covered too.  No early
 * stopping: every epoch 1..EPOCHS must appear. */
static int EPOCHS = 500;
static char LONG_JOB[512];

static void long_job_size(double seconds_per_epoch)
{
    /* version 1 runs batch 32; the long job's batch 16 costs ~1.6x an epoch */
    double want =
        test_seconds(20.0) / (1.6 * (seconds_per_epoch > 1e-6 ? seconds_per_epoch : 1e-6));
    EPOCHS = want < 300 ? 300 : want > 20000 ? 20000 : (int)want;
    snprintf(LONG_JOB, sizeof LONG_JOB,
             "{\"model\":\"digits\",\"dataset\":\"digits\",\"epochs\":%d,\"batch_size\":16,"
             "\"validation_split\":0.2,\"seed\":3,\"warm_start\":true,"
             "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.0005}}",
             EPOCHS);
}

/* Uploads digits, creates the model and trains version 1 on daemon d;
 * returns version 1's predictions (malloc()'d). */
static char *prepare_version_1(const test_daemon *d)
{
    td_upload_csv(d, "tests/data/digits.csv", "digits", "digit");
    td_post_ok(d, "/v1/models",
               "{\"name\":\"digits\",\"inputs\":64,\"layers\":["
               "{\"units\":128,\"activation\":\"relu\"},"
               "{\"units\":128,\"activation\":\"relu\"},"
               "{\"units\":10,\"activation\":\"softmax\"}],"
               "\"loss\":\"cross_entropy\",\"seed\":5}",
               201);
    char id[128];
    td_create_job(d,
                  "{\"model\":\"digits\",\"dataset\":\"digits\",\"epochs\":5,"
                  "\"batch_size\":32,\"validation_split\":0.2,\"seed\":1,"
                  "\"normalize\":\"standard\"}",
                  id, sizeof id);
    json_decref(td_wait_job(d, id, "succeeded", 60));
    /* The fastest epoch sizes the long job: a mean would count the moments
     * another test's daemon had the CPU, and a job sized from them can end
     * before its kills once the CPU is free again. */
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    ts_resp m = td_call(d, "GET", path, NULL, 200);
    json_t *rows = json_object_get(m.json, "epochs");
    double fastest = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        double s = json_number_value(json_object_get(json_array_get(rows, i), "seconds"));
        if (i == 0 || s < fastest)
            fastest = s;
    }
    if (json_array_size(rows) > 0)
        long_job_size(fastest);
    ts_resp_free(&m);
    return predict(d, 1);
}

/* Seeded delays so a failure can be replayed (BACKPROPD_RESUME_SEED). */
static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- SIGKILL mid-training, three times -------------------------------- */

Test(resume, sigkill_three_times_then_finishes_like_an_uninterrupted_run)
{
    const char *flags[] = {"--workers", "1", NULL};
    it_start(flags);
    char *v1_before = prepare_version_1(&D);
    char id[128];
    td_create_job(&D, LONG_JOB, id, sizeof id);
    json_decref(td_wait_job(&D, id, "running", 30));

    unsigned seed = 20261127u;
    const char *env_seed = getenv("BACKPROPD_RESUME_SEED");
    if (env_seed && *env_seed)
        seed = (unsigned)strtoul(env_seed, NULL, 10);
    cr_log_info("resume: seed %u (set BACKPROPD_RESUME_SEED to replay another); %d epochs",
                seed, EPOCHS);

    int kills = 0;
    for (int round = 0; round < 3; round++) {
        /* 2.5-4 s (scaled) after the (re)start: past the first checkpoint
         * (2 s of training), and mid-epoch more often than not */
        double delay = test_seconds(2.5 + (double)(next_rand(&seed) % 1500) / 1000.0);
        sleep_s(delay);
        json_t *j = td_job(&D, id);
        char st[32];
        snprintf(st, sizeof st, "%s", ts_json_str(j, "status"));
        json_int_t before = json_integer_value(json_object_get(j, "epoch"));
        json_decref(j);
        if (strcmp(st, "running") != 0) {
            cr_log_warn("resume: job already %s before kill %d; fewer kills this run", st,
                        round + 1);
            break;
        }
        td_kill(&D);
        kills++;
        it_expect_db_intact(D.db);
        cr_assert_eq(db_int(D.db, "SELECT count(*) FROM jobs WHERE id = ?1 AND status = 'running'",
                            id),
                     1, "a killed job must still be running in the database");
        long long ck = db_int(D.db, "SELECT coalesce(max(epoch), 0) FROM job_checkpoints "
                                    "WHERE job = ?1", id);
        it_restart();
        /* taken up again, not failed */
        j = td_job(&D, id);
        cr_assert_str_eq(ts_json_str(j, "status"), "running", "after restart %d: %s", round + 1,
                         ts_json_str(j, "error"));
        cr_assert(json_is_null(json_object_get(j, "error")));
        cr_log_info("resume: kill %d after %.2f s at epoch %lld; checkpoint at epoch %lld; "
                    "epoch %lld right after the restart",
                    round + 1, delay, (long long)before, ck,
                    (long long)json_integer_value(json_object_get(j, "epoch")));
        json_decref(j);
    }
    cr_assert_geq(kills, 2, "the job finished too soon to be killed (%d kills)", kills);

    json_t *done = td_wait_job(&D, id, "succeeded", 180);
    cr_assert_eq(json_integer_value(json_object_get(done, "epoch")), EPOCHS);
    cr_assert_eq(json_integer_value(json_object_get(done, "model_version")), 2);
    double acc = json_number_value(json_object_get(done, "val_accuracy"));
    json_decref(done);

    /* the checkpoint path was used (the first kill comes after one) */
    char *log = test_daemon_log_tail(&D, 1 << 20);
    cr_assert(strstr(log, "resumed after a restart from its checkpoint") != NULL,
              "no resume from a checkpoint in the log:\n%s", log);
    free(log);

    /* one metrics row per epoch, 1..EPOCHS, in order */
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    ts_resp m = td_call(&D, "GET", path, NULL, 200);
    json_t *rows = json_object_get(m.json, "epochs");
    cr_assert_eq(json_array_size(rows), EPOCHS, "%zu metrics rows, want %d",
                 json_array_size(rows), EPOCHS);
    for (size_t i = 0; i < json_array_size(rows); i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(rows, i), "epoch")),
                     (json_int_t)i + 1, "metrics row %zu", i);

    /* the version trained before the kills predicts bit-identically */
    char *v1_after = predict(&D, 1);
    cr_assert_str_eq(v1_after, v1_before, "version 1 changed across the kills");
    char *v2 = predict(&D, 2);

    it_stop_ok();
    it_expect_db_intact(D.db);
    cr_assert_eq(db_int(D.db, "SELECT count(*) FROM job_checkpoints", NULL), 0,
                 "a finished job keeps no checkpoint");
    cr_assert_eq(db_int(D.db, "SELECT count(DISTINCT epoch) FROM job_metrics WHERE job = ?1", id),
                 EPOCHS);

    /* the same job, uninterrupted, on a fresh daemon */
    test_daemon_opts ro = {.flags = flags};
    test_daemon *R = it_daemon(&ro);
    char *r1 = prepare_version_1(R);
    cr_assert_str_eq(r1, v1_before, "version 1 differs between two fresh daemons");
    char rid[128];
    td_create_job(R, LONG_JOB, rid, sizeof rid);
    json_t *ref = td_wait_job(R, rid, "succeeded", 180);
    double ref_acc = json_number_value(json_object_get(ref, "val_accuracy"));
    json_decref(ref);
    cr_assert_leq(fabs(acc - ref_acc), 0.03,
                  "val_accuracy %.4f after %d kills vs %.4f uninterrupted", acc, kills, ref_acc);

    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", rid);
    ts_resp rm = td_call(R, "GET", path, NULL, 200);
    json_t *rrows = json_object_get(rm.json, "epochs");
    int same = json_array_size(rrows) == json_array_size(rows);
    for (size_t i = 0; same && i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i), *b = json_array_get(rrows, i);
        const char *keys[] = {"train_loss", "train_accuracy", "val_loss", "val_accuracy"};
        for (int k = 0; k < 4; k++)
            if (!json_equal(json_object_get(a, keys[k]), json_object_get(b, keys[k])))
                same = 0;
    }
    char *rv2 = predict(R, 2);
    cr_log_info("resume: val_accuracy %.6f after %d kills, %.6f uninterrupted; metrics %s, "
                "version 2 predictions %s",
                acc, kills, ref_acc, same ? "bit-identical" : "differ",
                strcmp(rv2, v2) == 0 ? "bit-identical" : "differ");

    ts_resp_free(&m);
    ts_resp_free(&rm);
    free(v1_before);
    free(v1_after);
    free(v2);
    free(rv2);
    free(r1);
}

/* ---- a cancel requested just before a crash ----------------------------- */

Test(resume, cancel_requested_before_a_crash_stays_cancelled)
{
    const char *flags[] = {"--workers", "2", NULL};
    it_start(flags);
    it_create_slow_model("slow");
    char a[128], b[128], path[200];
    it_start_slow_job("slow", a, sizeof a);
    it_start_slow_job("slow", b, sizeof b);

    /* a: cancelled over HTTP and killed at once, racing the worker (it may
     * or may not have ended the job before the kill) */
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", a);
    it_post_ok(path, NULL, 202);
    td_kill(&D);
    /* b: the request was recorded but the worker never saw it: exactly
     * what the database holds when the crash beats the worker */
    db_exec(D.db, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND status = 'running'", b);
    cr_assert_eq(db_int(D.db, "SELECT count(*) FROM jobs WHERE id = ?1 AND status = 'running'", b),
                 1);
    it_expect_db_intact(D.db);

    it_restart();
    /* decided at start-up, before any worker could resume them */
    const char *ids[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        json_t *j = td_job(&D, ids[i]);
        cr_assert_str_eq(ts_json_str(j, "status"), "cancelled", "job %s: %s", ids[i],
                         json_dumps(j, JSON_COMPACT));
        cr_assert(json_is_null(json_object_get(j, "model_version")));
        cr_assert(json_is_null(json_object_get(j, "error")));
        cr_assert(json_is_string(json_object_get(j, "finished_at")));
        json_decref(j);
    }
    ts_resp r = td_call(&D, "GET", "/v1/models/slow", NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "version")), 0);
    ts_resp_free(&r);
    /* and they stay cancelled: nothing picks them up again */
    sleep_s(test_seconds(1.5));
    for (int i = 0; i < 2; i++) {
        json_t *j = td_job(&D, ids[i]);
        cr_assert_str_eq(ts_json_str(j, "status"), "cancelled");
        json_decref(j);
    }
    it_stop_ok();
    it_expect_db_intact(D.db);
    cr_assert_eq(db_int(D.db, "SELECT count(*) FROM job_checkpoints", NULL), 0);
}

/* ---- the store side ----------------------------------------------------- */

static char sdir[64], sdb[128];

static void store_setup(void)
{
    snprintf(sdir, sizeof sdir, "/tmp/bpresume.XXXXXX");
    cr_assert_not_null(mkdtemp(sdir));
    snprintf(sdb, sizeof sdb, "%s/t.db", sdir);
}

static void store_teardown(void)
{
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[200];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", sdb, suffix[i]);
        unlink(p);
    }
    rmdir(sdir);
}

TestSuite(resume_store, .init = store_setup, .fini = store_teardown);

static store *sopen(void)
{
    store *s = NULL;
    srv_err e = {0};
    cr_assert_eq(store_open(sdb, &s, &e), 0, "%s", e.msg);
    return s;
}

/* A model "m" (2 inputs, 2 softmax outputs) and a data set "d". */
static void s_fixture(store *s)
{
    srv_err e = {0};
    json_t *spec = json_pack("{s:s, s:i, s:[{s:i, s:s, s:f}, {s:i, s:s, s:f}], s:s, s:s, s:i, "
                             "s:i}",
                             "name", "m", "inputs", 2, "layers", "units", 4, "activation", "relu",
                             "dropout", 0.0, "units", 2, "activation", "softmax", "dropout", 0.0,
                             "loss", "cross_entropy", "init", "he", "seed", 7, "parameters", 22);
    json_t *o = NULL;
    cr_assert_eq(store_model_create(s, spec, &o, &e), 0, "%s", e.msg);
    json_decref(spec);
    json_decref(o);
    ds_data *d = ds_data_new();
    d->rows = 4;
    d->features = 2;
    d->X = calloc(8, sizeof(float));
    d->target_width = 2;
    d->Y = calloc(8, sizeof(float));
    cr_assert_eq(store_dataset_create(s, "d", d, &o, &e), 0, "%s", e.msg);
    json_decref(o);
    ds_data_free(d);
}

static char *s_job(store *s, int warm)
{
    json_t *p = json_pack("{s:s, s:s, s:i, s:b}", "model", "m", "dataset", "d", "epochs", 10,
                          "warm_start", warm);
    json_t *j = NULL;
    srv_err e = {0};
    cr_assert_eq(store_job_create(s, p, NULL, 100, &j, &e), 0, "%s", e.msg);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    json_decref(p);
    return id;
}

static bp_epoch_metrics s_epoch(uint32_t n)
{
    bp_epoch_metrics m = {.epoch = n,
                          .train_loss = 1.0 / n,
                          .train_accuracy = 0.5 + n / 100.0,
                          .val_loss = n == 2 ? NAN : 2.0 / n,
                          .val_accuracy = 0.25 + n / 100.0,
                          .seconds = 0.125};
    return m;
}

static const char *s_status(store *s, const char *id, json_t **keep)
{
    srv_err e = {0};
    cr_assert_eq(store_job_get(s, id, keep, &e), 0, "%s", e.msg);
    return json_string_value(json_object_get(*keep, "status"));
}

Test(resume_store, checkpoint_round_trip_rewind_and_end)
{
    store *s = sopen();
    s_fixture(s);
    char *id = s_job(s, 0);
    store_claim c;
    srv_err e = {0};
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);

    void *state = NULL;
    size_t len = 0;
    uint32_t ep = 9, best = 9;
    cr_assert_eq(store_job_checkpoint_load(s, id, &state, &len, &ep, &best, &e), 0);
    cr_assert_null(state);

    unsigned char blob[300];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7);
    for (uint32_t n = 1; n <= 5; n++) {
        bp_epoch_metrics m = s_epoch(n);
        if (n == 3) {
            cr_assert_eq(store_job_epoch_checkpoint(s, id, &m, 10, blob, sizeof blob, 2, &e), 0,
                         "%s", e.msg);
        } else {
            cr_assert_eq(store_job_epoch(s, id, &m, 10, &e), 0, "%s", e.msg);
        }
    }
    cr_assert_eq(store_job_checkpoint_load(s, id, &state, &len, &ep, &best, &e), 1, "%s", e.msg);
    cr_assert_eq(len, sizeof blob);
    cr_assert_eq(memcmp(state, blob, len), 0);
    cr_assert_eq(ep, 3);
    cr_assert_eq(best, 2);
    free(state);

    /* a restart: the job resumes from epoch 3, and shows so at once */
    store_close(s);
    s = sopen();
    cr_assert_eq(store_recover_running(s, &e), 1);
    json_t *j = NULL;
    cr_assert_eq(store_job_metrics(s, id, &j, &e), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "epochs")), 3);
    json_decref(j);
    cr_assert_str_eq(s_status(s, id, &j), "running");
    cr_assert_eq(json_integer_value(json_object_get(j, "epoch")), 3);
    cr_assert_float_eq(json_real_value(json_object_get(j, "train_loss")), 1.0 / 3, 1e-12);
    json_decref(j);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_eq(c.resumed, 1);
    store_claim_clear(&c);
    cr_assert_eq(store_job_rewind(s, id, 3, &e), 0, "%s", e.msg);
    cr_assert_eq(store_job_metrics(s, id, &j, &e), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "epochs")), 3);
    json_decref(j);
    cr_assert_str_eq(s_status(s, id, &j), "running");
    cr_assert_eq(json_integer_value(json_object_get(j, "epoch")), 3);
    cr_assert_float_eq(json_real_value(json_object_get(j, "train_loss")), 1.0 / 3, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(j, "val_accuracy")), 0.28, 1e-12);
    json_decref(j);
    /* the rows come back as they were written (NaN as NaN) */
    bp_epoch_metrics m2;
    cr_assert_eq(store_job_epoch_get(s, id, 2, &m2, &e), 0, "%s", e.msg);
    bp_epoch_metrics w2 = s_epoch(2);
    cr_assert(m2.epoch == 2 && m2.train_loss == w2.train_loss && isnan(m2.val_loss) &&
              m2.val_accuracy == w2.val_accuracy && m2.seconds == w2.seconds);
    cr_assert_eq(store_job_epoch_get(s, id, 4, &m2, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);

    /* epochs 4.. run again: each appears once */
    for (uint32_t n = 4; n <= 6; n++) {
        bp_epoch_metrics m = s_epoch(n);
        cr_assert_eq(store_job_epoch(s, id, &m, 10, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(store_job_metrics(s, id, &j, &e), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "epochs")), 6);
    json_decref(j);

    /* rewinding to 0 (an unusable checkpoint) forgets everything */
    cr_assert_eq(store_job_rewind(s, id, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(store_job_checkpoint_load(s, id, &state, &len, &ep, &best, &e), 0);
    cr_assert_str_eq(s_status(s, id, &j), "running");
    cr_assert_eq(json_integer_value(json_object_get(j, "epoch")), 0);
    cr_assert(json_is_null(json_object_get(j, "train_loss")));
    json_decref(j);

    /* ending the job drops its checkpoint */
    bp_epoch_metrics m = s_epoch(1);
    cr_assert_eq(store_job_epoch_checkpoint(s, id, &m, 10, blob, sizeof blob, 1, &e), 0);
    uint32_t v = 0;
    cr_assert_eq(store_job_succeed(s, id, "m", blob, sizeof blob, &m, &v, &e), 0, "%s", e.msg);
    cr_assert_eq(v, 1);
    cr_assert_eq(store_job_checkpoint_load(s, id, &state, &len, &ep, &best, &e), 0);
    free(id);
    store_close(s);
}

Test(resume_store, warm_start_resumes_from_its_base_version)
{
    store *s = sopen();
    s_fixture(s);
    srv_err e = {0};
    unsigned char blob[16] = {1, 2, 3};
    uint32_t v = 0;
    /* version 1 */
    char *first = s_job(s, 0);
    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    cr_assert_eq(store_job_succeed(s, first, "m", blob, sizeof blob, NULL, &v, &e), 0);
    /* the warm job starts from version 1 ... */
    char *warm = s_job(s, 1);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, warm);
    cr_assert_eq(c.base_version, 1);
    store_claim_clear(&c);
    /* ... another job makes version 2 meanwhile ... */
    char *other = s_job(s, 0);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    cr_assert_eq(store_job_succeed(s, other, "m", blob, sizeof blob, NULL, &v, &e), 0);
    cr_assert_eq(v, 2);
    store_close(s);
    /* ... and after a crash the warm job resumes from version 1 still */
    s = sopen();
    cr_assert_eq(store_recover_running(s, &e), 1);
    char *later = s_job(s, 0);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, warm, "the interrupted job is taken up before queued ones");
    cr_assert_eq(c.resumed, 1);
    cr_assert_eq(c.base_version, 1);
    store_claim_clear(&c);
    /* a cold job records no base */
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, later);
    cr_assert_eq(c.base_version, 0);
    cr_assert_eq(c.resumed, 0);
    store_claim_clear(&c);
    free(first);
    free(warm);
    free(other);
    free(later);
    store_close(s);
}

Test(resume_store, cancel_of_a_job_waiting_to_resume_is_immediate)
{
    store *s = sopen();
    s_fixture(s);
    srv_err e = {0};
    char *id = s_job(s, 0);
    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    bp_epoch_metrics m = s_epoch(1);
    unsigned char blob[8] = {9};
    cr_assert_eq(store_job_epoch_checkpoint(s, id, &m, 10, blob, sizeof blob, 1, &e), 0);
    /* a second job, never checkpointed, goes back to epoch 0 */
    char *none = s_job(s, 0);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    for (uint32_t n = 1; n <= 2; n++) {
        m = s_epoch(n);
        cr_assert_eq(store_job_epoch(s, none, &m, 10, &e), 0, "%s", e.msg);
    }
    store_close(s);

    s = sopen();
    cr_assert_eq(store_recover_running(s, &e), 2);
    json_t *nj = NULL;
    cr_assert_str_eq(s_status(s, none, &nj), "running");
    cr_assert_eq(json_integer_value(json_object_get(nj, "epoch")), 0);
    cr_assert(json_is_null(json_object_get(nj, "val_loss")));
    json_decref(nj);
    cr_assert_eq(store_job_metrics(s, none, &nj, &e), 0);
    cr_assert_eq(json_array_size(json_object_get(nj, "epochs")), 0);
    json_decref(nj);
    int was_running = 1;
    json_t *j = NULL;
    cr_assert_eq(store_job_cancel(s, id, &was_running, &j, &e), 0, "%s", e.msg);
    /* no worker owns it: nobody to tell, it is over now */
    cr_assert_eq(was_running, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "cancelled");
    json_decref(j);
    void *state = NULL;
    size_t len = 0;
    uint32_t ep, best;
    cr_assert_eq(store_job_checkpoint_load(s, id, &state, &len, &ep, &best, &e), 0);
    /* the cancelled job is not resumed; the other one is */
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, none);
    store_claim_clear(&c);
    cr_assert_eq(store_job_claim(s, &c, &e), 0);
    /* a second restart changes nothing for the cancelled one */
    cr_assert_eq(store_recover_running(s, &e), 1);
    cr_assert_str_eq(s_status(s, id, &j), "cancelled");
    json_decref(j);
    free(id);
    free(none);
    store_close(s);
}
