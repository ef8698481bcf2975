/*
 * server_store.c - the SQLite store as the daemon relies on it: migrations
 * run once and a newer schema is refused; models, datasets and jobs round
 * trip; the job life cycle (claim, epochs, versions, cancel, restart rule,
 * queue limit); failed writes leave nothing; a read-only database still
 * serves reads and answers writes with "unavailable".
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode/dataset.h"
#include "store/store.h"

/* How many migrations this binary embeds (store_internal.h): the schema
 * version a fresh database reaches. */
extern const int store_migrations_count;

static char dir[64];
static char db_path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/bpstore.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/test.db", dir);
}

static void rm_db(const char *path)
{
    char p[200];
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static void teardown(void)
{
    char p[160];
    rm_db(db_path);
    snprintf(p, sizeof p, "%s/copy.db", dir);
    rm_db(p);
    rmdir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* One page as long as the store allows: every list the tests make fits. */
static store_page ALL = {.limit = STORE_PAGE_MAX};

static store *open_ok(void)
{
    store *s = NULL;
    srv_err e = {0};
    int rc = store_open(db_path, &s, &e);
    cr_assert_eq(rc, 0, "store_open: %s", e.msg);
    return s;
}

/* A direct SQLite query returning one integer (for checking rows). */
static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    long long v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static json_t *spec_of(const char *name, int inputs, int outputs, const char *act,
                       const char *loss)
{
    json_t *spec = json_pack("{s:s, s:i, s:[{s:i, s:s, s:f}, {s:i, s:s, s:f}], s:s, s:s, s:i, "
                             "s:i}",
                             "name", name, "inputs", inputs, "layers", "units", 8, "activation",
                             "relu", "dropout", 0.25, "units", outputs, "activation", act,
                             "dropout", 0.0, "loss", loss, "init", "he", "seed", 7,
                             "parameters", inputs * 8 + 8 + 8 * outputs + outputs);
    cr_assert_not_null(spec);
    return spec;
}

static void create_model(store *s, const char *name, int inputs, int outputs)
{
    json_t *spec = spec_of(name, inputs, outputs, "softmax", "cross_entropy");
    json_t *m = NULL;
    srv_err e = {0};
    cr_assert_eq(store_model_create(s, spec, &m, &e), 0, "%s", e.msg);
    json_decref(spec);
    json_decref(m);
}

/* rows x features with awkward floats (negative zero, subnormals, huge). */
static ds_data *make_data(uint32_t rows, uint32_t features, int labelled)
{
    ds_data *d = ds_data_new();
    d->rows = rows;
    d->features = features;
    d->X = malloc(sizeof(float) * rows * features);
    for (uint32_t i = 0; i < rows * features; i++) {
        float v = (float)(i * 0.37) - 11.0f;
        if (i % 7 == 0)
            v = -0.0f;
        if (i % 11 == 0)
            v = 1.4e-45f;
        if (i % 13 == 0)
            v = 3.4e38f;
        d->X[i] = v;
    }
    if (labelled) {
        d->labels = malloc(sizeof(int32_t) * rows);
        for (uint32_t r = 0; r < rows; r++)
            d->labels[r] = (int32_t)(r % 3);
        d->n_classes = 3;
        d->class_names = calloc(3, sizeof(char *));
        d->class_names[0] = strdup("setosa");
        d->class_names[1] = strdup("versi\"color");
        d->class_names[2] = strdup("virginica");
    } else {
        d->target_width = 2;
        d->Y = malloc(sizeof(float) * rows * 2);
        for (uint32_t i = 0; i < rows * 2; i++)
            d->Y[i] = (float)i / 3.0f;
    }
    return d;
}

static void create_dataset(store *s, const char *name, const ds_data *d)
{
    json_t *o = NULL;
    srv_err e = {0};
    cr_assert_eq(store_dataset_create(s, name, d, &o, &e), 0, "%s", e.msg);
    json_decref(o);
}

static json_t *params_of(const char *model, const char *dataset, int epochs)
{
    json_t *p = json_pack("{s:s, s:o, s:i, s:i, s:{s:s, s:f}}", "model", model, "dataset",
                          dataset ? json_string(dataset) : json_null(), "epochs", epochs,
                          "batch_size", 32, "optimizer", "type", "adam", "learning_rate", 0.1);
    cr_assert_not_null(p);
    return p;
}

static char *create_job(store *s, const char *model, const char *dataset, const ds_data *inl)
{
    json_t *p = params_of(model, dataset, 10);
    json_t *j = NULL;
    srv_err e = {0};
    cr_assert_eq(store_job_create(s, p, inl, 1000, &j, &e), 0, "%s", e.msg);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(p);
    json_decref(j);
    return id;
}

static const char *job_status_of(store *s, const char *id, json_t **keep)
{
    srv_err e = {0};
    cr_assert_eq(store_job_get(s, id, keep, &e), 0, "%s", e.msg);
    return json_string_value(json_object_get(*keep, "status"));
}

/* ---- migrations ---- */

Test(store, migrations_applied_once_and_recorded)
{
    store *s = open_ok();
    cr_assert_eq(store_schema_version(s), store_migrations_count);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM schema_migrations"),
                 store_migrations_count);
    cr_assert_eq(raw_int(db_path, "PRAGMA user_version"), store_migrations_count);
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    raw_exec(db_path, "UPDATE schema_migrations SET applied_at = 'marker'");

    /* Reopening applies nothing. */
    s = open_ok();
    cr_assert_eq(store_schema_version(s), store_migrations_count);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM schema_migrations"),
                 store_migrations_count);
    cr_assert_eq(raw_int(db_path,
                         "SELECT count(*) FROM schema_migrations WHERE applied_at = 'marker'"),
                 store_migrations_count);
}

Test(store, newer_schema_refused_with_message)
{
    store_close(open_ok());
    raw_exec(db_path, "PRAGMA user_version = 77");
    store *s = NULL;
    srv_err e = {0};
    cr_assert_eq(store_open(db_path, &s, &e), -1);
    cr_assert_null(s);
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    char want[160];
    snprintf(want, sizeof want,
             "database schema version 77 is newer than this backpropd (knows %d); upgrade "
             "backpropd",
             store_migrations_count);
    cr_assert_not_null(strstr(e.msg, want), "%s", e.msg);
}

Test(store, newer_schema_in_table_refused)
{
    store_close(open_ok());
    raw_exec(db_path, "INSERT INTO schema_migrations VALUES (999, 'future', 'x')");
    store *s = NULL;
    srv_err e = {0};
    cr_assert_eq(store_open(db_path, &s, &e), -1);
    cr_assert_not_null(strstr(e.msg, "version 999 is newer"), "%s", e.msg);
}

Test(store, unopenable_path_is_unavailable)
{
    store *s = NULL;
    srv_err e = {0};
    cr_assert_eq(store_open("/nonexistent-dir/x/y.db", &s, &e), -1);
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%d %s", e.code, e.msg);
}

/* ---- models ---- */

Test(store, model_create_get_list_delete)
{
    store *s = open_ok();
    json_t *spec = spec_of("iris", 4, 3, "softmax", "cross_entropy");
    json_t *m = NULL;
    srv_err e = {0};
    cr_assert_eq(store_model_create(s, spec, &m, &e), 0, "%s", e.msg);
    cr_assert_str_eq(json_string_value(json_object_get(m, "name")), "iris");
    cr_assert_eq(json_integer_value(json_object_get(m, "inputs")), 4);
    cr_assert_eq(json_integer_value(json_object_get(m, "version")), 0);
    cr_assert(json_is_null(json_object_get(m, "classes")));
    cr_assert(json_equal(json_object_get(m, "layers"), json_object_get(spec, "layers")));
    cr_assert_eq(json_integer_value(json_object_get(m, "seed")), 7);
    const char *created = json_string_value(json_object_get(m, "created_at"));
    cr_assert_eq(strlen(created), 24, "%s", created); /* 2026-11-27T18:37:42.123Z */
    cr_assert_eq(created[10], 'T');
    cr_assert_eq(created[23], 'Z');
    json_decref(m);

    /* Duplicate: 409 with the name, and no second row. */
    cr_assert_eq(store_model_create(s, spec, &m, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_str_eq(e.msg, "model \"iris\" already exists");
    cr_assert_null(m);
    json_decref(spec);

    create_model(s, "alpha", 2, 2);
    json_t *list = NULL;
    cr_assert_eq(store_model_list(s, &ALL, &list, &e), 0, "%s", e.msg);
    cr_assert_eq(json_array_size(list), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                     "alpha");
    json_decref(list);

    cr_assert_eq(store_model_get(s, "nope", &m, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_str_eq(e.msg, "model \"nope\" not found");

    cr_assert_eq(store_model_delete(s, "iris", &e), 0, "%s", e.msg);
    cr_assert_eq(store_model_get(s, "iris", &m, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_eq(store_model_delete(s, "iris", &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM models"), 1);
}

Test(store, model_without_version_conflicts_on_blob)
{
    store *s = open_ok();
    create_model(s, "m", 4, 3);
    void *blob;
    size_t len;
    srv_err e = {0};
    cr_assert_eq(store_version_blob(s, "m", 0, &blob, &len, NULL, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_eq(store_version_blob(s, "m", 2, &blob, &len, NULL, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_eq(store_version_blob(s, "zz", 0, &blob, &len, NULL, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    json_t *v = NULL;
    cr_assert_eq(store_model_versions(s, "m", &v, &e), 0);
    cr_assert_eq(json_array_size(v), 0);
    json_decref(v);
    store_close(s);
}

/* ---- datasets ---- */

Test(store, dataset_matrix_round_trips_bit_exactly)
{
    store *s = open_ok();
    ds_data *d = make_data(37, 5, 0);
    json_t *o = NULL;
    srv_err e = {0};
    cr_assert_eq(store_dataset_create(s, "reg", d, &o, &e), 0, "%s", e.msg);
    cr_assert_eq(json_integer_value(json_object_get(o, "rows")), 37);
    cr_assert_eq(json_integer_value(json_object_get(o, "features")), 5);
    cr_assert_eq(json_integer_value(json_object_get(o, "targets")), 2);
    cr_assert(json_is_null(json_object_get(o, "classes")));
    json_decref(o);

    /* Duplicate name: 409 and still one row. */
    cr_assert_eq(store_dataset_create(s, "reg", d, &o, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_str_eq(e.msg, "dataset \"reg\" already exists");

    create_model(s, "m", 5, 2);
    char *id = create_job(s, "m", "reg", NULL);
    ds_data *back = NULL;
    cr_assert_eq(store_job_data(s, id, &back, &e), 0, "%s", e.msg);
    cr_assert_eq(back->rows, 37);
    cr_assert_eq(back->features, 5);
    cr_assert_eq(back->target_width, 2);
    cr_assert_null(back->labels);
    cr_assert_eq(memcmp(back->X, d->X, sizeof(float) * 37 * 5), 0);
    cr_assert_eq(memcmp(back->Y, d->Y, sizeof(float) * 37 * 2), 0);
    ds_data_free(back);
    free(id);
    ds_data_free(d);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM datasets"), 1);
}

Test(store, labelled_dataset_round_trips_with_class_names)
{
    store *s = open_ok();
    ds_data *d = make_data(10, 3, 1);
    json_t *o = NULL;
    srv_err e = {0};
    cr_assert_eq(store_dataset_create(s, "iris", d, &o, &e), 0, "%s", e.msg);
    cr_assert(json_is_null(json_object_get(o, "targets")));
    json_t *want = json_pack("[s, s, s]", "setosa", "versi\"color", "virginica");
    cr_assert(json_equal(json_object_get(o, "classes"), want));
    json_decref(o);

    json_t *classes = NULL;
    cr_assert_eq(store_dataset_classes(s, "iris", &classes, &e), 0);
    cr_assert(json_equal(classes, want));
    json_decref(classes);
    json_decref(want);

    fit_shape sh;
    cr_assert_eq(store_dataset_shape(s, "iris", &sh, &e), 0);
    cr_assert_eq(sh.rows, 10);
    cr_assert_eq(sh.features, 3);
    cr_assert_eq(sh.target_width, 0);
    cr_assert_eq(sh.n_classes, 3);
    cr_assert_eq(sh.integer_targets, 0);

    create_model(s, "m", 3, 3);
    char *id = create_job(s, "m", "iris", NULL);
    ds_data *back = NULL;
    cr_assert_eq(store_job_data(s, id, &back, &e), 0, "%s", e.msg);
    cr_assert_eq(back->n_classes, 3);
    cr_assert_eq(memcmp(back->labels, d->labels, sizeof(int32_t) * 10), 0);
    cr_assert_eq(memcmp(back->X, d->X, sizeof(float) * 30), 0);
    cr_assert_str_eq(back->class_names[1], "versi\"color");
    ds_data_free(back);
    free(id);

    json_t *list = NULL;
    cr_assert_eq(store_dataset_list(s, &ALL, &list, &e), 0);
    cr_assert_eq(json_array_size(list), 1);
    json_decref(list);
    cr_assert_eq(store_dataset_get(s, "none", &o, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_eq(store_dataset_shape(s, "none", &sh, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    ds_data_free(d);
    store_close(s);
}

Test(store, integer_targets_recorded_in_shape)
{
    store *s = open_ok();
    ds_data *d = ds_data_new();
    d->rows = 4;
    d->features = 1;
    d->X = calloc(4, sizeof(float));
    d->target_width = 1;
    d->Y = malloc(4 * sizeof(float));
    float ys[4] = {0, 2, 1, 2};
    memcpy(d->Y, ys, sizeof ys);
    create_dataset(s, "ints", d);
    d->Y[1] = 1.5f;
    create_dataset(s, "reals", d);
    ds_data_free(d);

    fit_shape sh;
    srv_err e = {0};
    cr_assert_eq(store_dataset_shape(s, "ints", &sh, &e), 0);
    cr_assert_eq(sh.target_width, 1);
    cr_assert_eq(sh.integer_targets, 1);
    cr_assert_eq(sh.max_target, 2);
    cr_assert_eq(store_dataset_shape(s, "reals", &sh, &e), 0);
    cr_assert_eq(sh.integer_targets, 0);
    store_close(s);
}

/* ---- jobs ---- */

Test(store, job_claim_epochs_succeed_gives_versions_1_and_2)
{
    store *s = open_ok();
    ds_data *d = make_data(12, 4, 1);
    create_dataset(s, "iris", d);
    ds_data_free(d);
    create_model(s, "iris", 4, 3);
    srv_err e = {0};

    char *id1 = create_job(s, "iris", "iris", NULL);
    char *id2 = create_job(s, "iris", "iris", NULL);
    cr_assert_eq(strncmp(id1, "j_", 2), 0);
    cr_assert_eq(strlen(id1), 22);
    cr_assert_str_neq(id1, id2);

    json_t *j = NULL;
    cr_assert_str_eq(job_status_of(s, id1, &j), "queued");
    cr_assert_eq(json_integer_value(json_object_get(j, "epochs")), 10);
    cr_assert(json_is_null(json_object_get(j, "train_loss")));
    cr_assert(json_is_null(json_object_get(j, "started_at")));
    cr_assert(json_is_null(json_object_get(j, "model_version")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "dataset")), "iris");
    cr_assert_eq(json_real_value(json_object_get(
                     json_object_get(json_object_get(j, "params"), "optimizer"),
                     "learning_rate")),
                 0.1);
    json_decref(j);

    /* Oldest first. */
    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1, "%s", e.msg);
    cr_assert_str_eq(c.id, id1);
    cr_assert_str_eq(c.model, "iris");
    cr_assert_eq(json_integer_value(json_object_get(c.spec, "inputs")), 4);
    cr_assert_eq(json_integer_value(json_object_get(c.params, "epochs")), 10);
    store_claim_clear(&c);
    cr_assert_str_eq(job_status_of(s, id1, &j), "running");
    cr_assert(json_is_string(json_object_get(j, "started_at")));
    json_decref(j);

    bp_epoch_metrics m = {1, 1.5, 0.5, NAN, INFINITY, 0.01};
    cr_assert_eq(store_job_epoch(s, id1, &m, 10, &e), 0, "%s", e.msg);
    m.epoch = 2;
    m.train_loss = 1.0;
    cr_assert_eq(store_job_epoch(s, id1, &m, 10, &e), 0, "%s", e.msg);
    /* Epoch 2 again (a resumed run) replaces its row. */
    m.train_loss = 0.75;
    m.val_loss = 0.8;
    cr_assert_eq(store_job_epoch(s, id1, &m, 10, &e), 0, "%s", e.msg);

    json_t *mt = NULL;
    cr_assert_eq(store_job_metrics(s, id1, &mt, &e), 0, "%s", e.msg);
    cr_assert_str_eq(json_string_value(json_object_get(mt, "job")), id1);
    json_t *epochs = json_object_get(mt, "epochs");
    cr_assert_eq(json_array_size(epochs), 2);
    json_t *e1 = json_array_get(epochs, 0), *e2 = json_array_get(epochs, 1);
    cr_assert_eq(json_integer_value(json_object_get(e1, "epoch")), 1);
    cr_assert(json_is_null(json_object_get(e1, "val_loss")));     /* NaN → null */
    cr_assert(json_is_null(json_object_get(e1, "val_accuracy"))); /* Inf → null */
    cr_assert_eq(json_real_value(json_object_get(e2, "train_loss")), 0.75);
    cr_assert_eq(json_real_value(json_object_get(e2, "val_loss")), 0.8);
    json_decref(mt);

    cr_assert_str_eq(job_status_of(s, id1, &j), "running");
    cr_assert_eq(json_integer_value(json_object_get(j, "epoch")), 2);
    cr_assert_eq(json_real_value(json_object_get(j, "progress")), 0.2);
    cr_assert_eq(json_real_value(json_object_get(j, "train_loss")), 0.75);
    json_decref(j);

    const char blob1[] = "BPNN-one", blob2[] = "BPNN-two!";
    uint32_t v = 0;
    cr_assert_eq(store_job_succeed(s, id1, "iris", blob1, sizeof blob1, &m, &v, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(v, 1);
    cr_assert_str_eq(job_status_of(s, id1, &j), "succeeded");
    cr_assert_eq(json_integer_value(json_object_get(j, "model_version")), 1);
    cr_assert_eq(json_real_value(json_object_get(j, "progress")), 1.0);
    cr_assert(json_is_string(json_object_get(j, "finished_at")));
    json_decref(j);

    /* A finished job cannot succeed twice. */
    cr_assert_eq(store_job_succeed(s, id1, "iris", blob1, sizeof blob1, &m, &v, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);

    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, id2);
    store_claim_clear(&c);
    cr_assert_eq(store_job_succeed(s, id2, "iris", blob2, sizeof blob2, NULL, &v, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(v, 2);
    cr_assert_eq(store_job_claim(s, &c, &e), 0);

    json_t *model = NULL;
    cr_assert_eq(store_model_get(s, "iris", &model, &e), 0);
    cr_assert_eq(json_integer_value(json_object_get(model, "version")), 2);
    json_t *classes = json_object_get(model, "classes");
    cr_assert_eq(json_array_size(classes), 3);
    cr_assert_str_eq(json_string_value(json_array_get(classes, 0)), "setosa");
    json_decref(model);

    json_t *vers = NULL;
    cr_assert_eq(store_model_versions(s, "iris", &vers, &e), 0);
    cr_assert_eq(json_array_size(vers), 2);
    json_t *v1 = json_array_get(vers, 0);
    cr_assert_eq(json_integer_value(json_object_get(v1, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(v1, "job")), id1);
    cr_assert_eq(json_real_value(json_object_get(json_object_get(v1, "metrics"), "train_loss")),
                 0.75);
    cr_assert(json_is_null(
        json_object_get(json_object_get(json_array_get(vers, 1), "metrics"), "val_loss")));
    json_decref(vers);

    void *blob;
    size_t len;
    uint32_t got;
    cr_assert_eq(store_version_blob(s, "iris", 0, &blob, &len, &got, &e), 0);
    cr_assert_eq(got, 2);
    cr_assert_eq(len, sizeof blob2);
    cr_assert_eq(memcmp(blob, blob2, len), 0);
    free(blob);
    cr_assert_eq(store_version_blob(s, "iris", 1, &blob, &len, &got, &e), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq(memcmp(blob, blob1, sizeof blob1), 0);
    free(blob);
    cr_assert_eq(store_version_blob(s, "iris", 3, &blob, &len, &got, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);

    long counts[JOB_STATUS_COUNT];
    cr_assert_eq(store_job_counts(s, counts, &e), 0);
    cr_assert_eq(counts[2], 2);
    cr_assert_eq(counts[0] + counts[1] + counts[3] + counts[4], 0);

    json_t *list = NULL;
    cr_assert_eq(store_job_list(s, "iris", &(job_status){JOB_SUCCEEDED}, &ALL, &list, &e), 0);
    cr_assert_eq(json_array_size(list), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), id1);
    json_decref(list);
    cr_assert_eq(store_job_list(s, NULL, &(job_status){JOB_QUEUED}, &ALL, &list, &e), 0);
    cr_assert_eq(json_array_size(list), 0);
    json_decref(list);
    free(id1);
    free(id2);
    store_close(s);
}

Test(store, inline_data_job)
{
    store *s = open_ok();
    create_model(s, "m", 4, 3);
    ds_data *d = make_data(9, 4, 1);
    json_t *p = params_of("m", NULL, 3);
    json_object_set_new(p, "data", json_pack("{s:i, s:i}", "rows", 9, "features", 4));
    json_t *j = NULL;
    srv_err e = {0};
    cr_assert_eq(store_job_create(s, p, d, 10, &j, &e), 0, "%s", e.msg);
    json_decref(p);
    cr_assert(json_is_null(json_object_get(j, "dataset")));
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(json_object_get(j, "params"), "data"), "rows")),
                 9);
    char id[40];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);

    ds_data *back = NULL;
    cr_assert_eq(store_job_data(s, id, &back, &e), 0, "%s", e.msg);
    cr_assert_eq(back->rows, 9);
    cr_assert_eq(memcmp(back->X, d->X, sizeof(float) * 36), 0);
    cr_assert_eq(memcmp(back->labels, d->labels, sizeof(int32_t) * 9), 0);
    cr_assert_str_eq(back->class_names[2], "virginica");
    ds_data_free(back);
    ds_data_free(d);

    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    uint32_t v;
    cr_assert_eq(store_job_succeed(s, id, "m", "x", 1, NULL, &v, &e), 0, "%s", e.msg);
    json_t *m = NULL;
    cr_assert_eq(store_model_get(s, "m", &m, &e), 0);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "classes"), 2)),
                     "virginica");
    json_decref(m);
    store_close(s);
}

Test(store, cancel_queued_running_finished)
{
    store *s = open_ok();
    ds_data *d = make_data(5, 2, 0);
    create_dataset(s, "d", d);
    ds_data_free(d);
    create_model(s, "m", 2, 2);
    char *a = create_job(s, "m", "d", NULL);
    char *b = create_job(s, "m", "d", NULL);
    srv_err e = {0};
    json_t *j = NULL;
    int was_running = -1;

    cr_assert_eq(store_job_cancel(s, b, &was_running, &j, &e), 0, "%s", e.msg);
    cr_assert_eq(was_running, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "cancelled");
    cr_assert(json_is_string(json_object_get(j, "finished_at")));
    json_decref(j);

    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, a);
    store_claim_clear(&c);
    cr_assert_eq(store_job_claim(s, &c, &e), 0); /* b is not queued any more */
    cr_assert_eq(store_job_cancel_requested(s, a), 0);
    cr_assert_eq(store_job_cancel(s, a, &was_running, &j, &e), 0, "%s", e.msg);
    cr_assert_eq(was_running, 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "running");
    json_decref(j);
    cr_assert_eq(store_job_cancel_requested(s, a), 1);
    cr_assert_eq(store_job_end(s, a, JOB_CANCELLED, NULL, &e), 0, "%s", e.msg);
    cr_assert_str_eq(job_status_of(s, a, &j), "cancelled");
    cr_assert(json_is_null(json_object_get(j, "error")));
    cr_assert(json_is_null(json_object_get(j, "model_version")));
    json_decref(j);

    cr_assert_eq(store_job_cancel(s, a, &was_running, &j, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_null(j);
    cr_assert_eq(store_job_cancel(s, "j_nope", &was_running, &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_eq(store_job_end(s, a, JOB_FAILED, "x", &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);

    /* No version for a cancelled job. */
    json_t *m = NULL;
    cr_assert_eq(store_model_get(s, "m", &m, &e), 0);
    cr_assert_eq(json_integer_value(json_object_get(m, "version")), 0);
    json_decref(m);
    free(a);
    free(b);
    store_close(s);
}

Test(store, queue_full_is_429_and_writes_nothing)
{
    store *s = open_ok();
    ds_data *d = make_data(5, 2, 0);
    create_dataset(s, "d", d);
    create_model(s, "m", 2, 2);
    json_t *p = params_of("m", "d", 5);
    json_t *j = NULL;
    srv_err e = {0};
    cr_assert_eq(store_job_create(s, p, NULL, 2, &j, &e), 0, "%s", e.msg);
    json_decref(j);
    cr_assert_eq(store_job_create(s, p, NULL, 2, &j, &e), 0, "%s", e.msg);
    json_decref(j);
    cr_assert_eq(store_job_create(s, p, NULL, 2, &j, &e), -1);
    cr_assert_eq(e.code, ERR_QUEUE_FULL);
    cr_assert_eq(err_http_status(e.code), 429);
    cr_assert_not_null(strstr(e.msg, "queue is full: 2 jobs queued"), "%s", e.msg);
    cr_assert_null(j);
    /* Inline data of a rejected job leaves no row either. */
    json_t *pi = params_of("m", NULL, 5);
    cr_assert_eq(store_job_create(s, pi, d, 2, &j, &e), -1);
    cr_assert_eq(e.code, ERR_QUEUE_FULL);
    json_decref(pi);
    long n;
    cr_assert_eq(store_jobs_queued(s, &n, &e), 0);
    cr_assert_eq(n, 2);
    json_decref(p);
    ds_data_free(d);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM jobs"), 2);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM job_data"), 0);
}

Test(store, job_for_missing_model_or_dataset_is_404_and_writes_nothing)
{
    store *s = open_ok();
    create_model(s, "m", 2, 2);
    ds_data *d = make_data(5, 2, 0);
    json_t *p = params_of("ghost", NULL, 5);
    json_t *j = NULL;
    srv_err e = {0};
    cr_assert_eq(store_job_create(s, p, d, 10, &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_str_eq(e.msg, "model \"ghost\" not found");
    json_decref(p);
    p = params_of("m", "nodata", 5);
    cr_assert_eq(store_job_create(s, p, NULL, 10, &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_str_eq(e.msg, "dataset \"nodata\" not found");
    json_decref(p);
    ds_data_free(d);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM jobs"), 0);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM job_data"), 0);
}

/* The restart rule of the hardening issue: a running job resumes (it
 * stays running and is claimed again before queued jobs); one whose cancel
 * was requested before the restart ends cancelled. */
Test(store, recover_running_resumes_and_honours_cancel)
{
    store *s = open_ok();
    ds_data *d = make_data(5, 2, 0);
    create_dataset(s, "d", d);
    ds_data_free(d);
    create_model(s, "m", 2, 2);
    char *a = create_job(s, "m", "d", NULL);
    char *b = create_job(s, "m", "d", NULL);
    char *x = create_job(s, "m", "d", NULL);
    store_claim c;
    srv_err e = {0};
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, a);
    cr_assert_eq(c.resumed, 0);
    store_claim_clear(&c);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, b);
    store_claim_clear(&c);
    int was_running = 0;
    json_t *j = NULL;
    cr_assert_eq(store_job_cancel(s, b, &was_running, &j, &e), 0, "%s", e.msg);
    cr_assert_eq(was_running, 1);
    json_decref(j);
    store_close(s);

    /* "Restart": a new connection finds two running jobs. */
    s = open_ok();
    cr_assert_eq(store_recover_running(s, &e), 1);
    cr_assert_str_eq(job_status_of(s, a, &j), "running");
    cr_assert(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    cr_assert_str_eq(job_status_of(s, b, &j), "cancelled");
    cr_assert(json_is_null(json_object_get(j, "model_version")));
    json_decref(j);
    cr_assert_str_eq(job_status_of(s, x, &j), "queued"); /* queued jobs survive */
    json_decref(j);
    /* the interrupted job is claimed again first */
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, a);
    cr_assert_eq(c.resumed, 1);
    store_claim_clear(&c);
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    cr_assert_str_eq(c.id, x);
    cr_assert_eq(c.resumed, 0);
    store_claim_clear(&c);
    long counts[JOB_STATUS_COUNT];
    cr_assert_eq(store_job_counts(s, counts, &e), 0);
    cr_assert_eq(counts[1], 2);
    cr_assert_eq(counts[4], 1);
    free(a);
    free(b);
    free(x);
    store_close(s);
}

Test(store, delete_refused_while_job_active_then_takes_its_jobs)
{
    store *s = open_ok();
    ds_data *d = make_data(5, 2, 0);
    create_dataset(s, "d", d);
    ds_data_free(d);
    create_model(s, "m", 2, 2);
    char *a = create_job(s, "m", "d", NULL);
    srv_err e = {0};
    cr_assert_eq(store_model_delete(s, "m", &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_not_null(strstr(e.msg, a), "%s", e.msg);
    cr_assert_eq(store_dataset_delete(s, "d", &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert_not_null(strstr(e.msg, a), "%s", e.msg);

    store_claim c;
    cr_assert_eq(store_job_claim(s, &c, &e), 1);
    store_claim_clear(&c);
    cr_assert_eq(store_model_delete(s, "m", &e), -1); /* running */
    cr_assert_eq(e.code, ERR_CONFLICT);
    bp_epoch_metrics m = {1, 0.5, 0.9, 0.6, 0.8, 0.1};
    cr_assert_eq(store_job_epoch(s, a, &m, 0, &e), 0, "%s", e.msg);
    uint32_t v;
    cr_assert_eq(store_job_succeed(s, a, "m", "w", 1, &m, &v, &e), 0, "%s", e.msg);

    cr_assert_eq(store_model_delete(s, "m", &e), 0, "%s", e.msg);
    cr_assert_eq(store_dataset_delete(s, "d", &e), 0, "%s", e.msg);
    cr_assert_eq(store_dataset_delete(s, "d", &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    /* The model's finished jobs went with it (openapi.yaml: "Deletes the
     * model, its versions and its finished jobs"), with their metrics. */
    json_t *j = NULL;
    cr_assert_eq(store_job_get(s, a, &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    cr_assert_eq(store_job_metrics(s, a, &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    /* A model created again under the name starts with no history. */
    create_model(s, "m", 2, 2);
    cr_assert_eq(store_job_list(s, "m", NULL, &ALL, &j, &e), 0, "%s", e.msg);
    cr_assert_eq(json_array_size(j), 0);
    json_decref(j);
    free(a);
    store_close(s);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM model_versions"), 0);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM job_metrics"), 0);
    cr_assert_eq(raw_int(db_path, "SELECT count(*) FROM jobs"), 0);
}

Test(store, epoch_for_unknown_or_finished_job_fails)
{
    store *s = open_ok();
    srv_err e = {0};
    bp_epoch_metrics m = {1, 0.5, 0.9, 0.6, 0.8, 0.1};
    cr_assert_eq(store_job_epoch(s, "j_missing", &m, 5, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    json_t *j = NULL;
    cr_assert_eq(store_job_metrics(s, "j_missing", &j, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    ds_data *d = NULL;
    cr_assert_eq(store_job_data(s, "j_missing", &d, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND);
    store_close(s);
}

Test(store, read_only_database_reads_work_writes_unavailable)
{
    store *s = open_ok();
    create_model(s, "iris", 4, 3);
    store_close(s);

    /* A copy made read-only.  Root ignores file modes, so as root the
     * same is asked for through SQLite's read-only URI. */
    char copy[160], cmd[400], path[200];
    snprintf(copy, sizeof copy, "%s/copy.db", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", db_path, copy);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(chmod(copy, 0444), 0);
    if (geteuid() == 0)
        snprintf(path, sizeof path, "file:%s?mode=ro", copy);
    else
        snprintf(path, sizeof path, "%s", copy);

    srv_err e = {0};
    cr_assert_eq(store_open(path, &s, &e), 0, "%s", e.msg);
    json_t *m = NULL;
    cr_assert_eq(store_model_get(s, "iris", &m, &e), 0, "%s", e.msg);
    json_decref(m);
    json_t *spec = spec_of("new", 2, 2, "softmax", "cross_entropy");
    cr_assert_eq(store_model_create(s, spec, &m, &e), -1);
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%d %s", e.code, e.msg);
    cr_assert_not_null(strstr(e.msg, "read-only"), "%s", e.msg);
    json_decref(spec);
    cr_assert_eq(store_model_delete(s, "iris", &e), -1);
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    cr_assert_eq(store_recover_running(s, &e), -1);
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    /* Reads still work after the failed writes. */
    cr_assert_eq(store_model_get(s, "iris", &m, &e), 0, "%s", e.msg);
    json_decref(m);
    store_close(s);
}

/* ---- pool ---- */

static store_pool *shared_pool;

static void *pool_worker(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < 10; i++) {
        store *s = store_pool_get(shared_pool);
        if (!s)
            return (void *)1;
        char name[32];
        snprintf(name, sizeof name, "m%d_%d", k, i);
        json_t *spec = spec_of(name, 2, 2, "softmax", "cross_entropy");
        json_t *m = NULL;
        srv_err e = {0};
        int rc = store_model_create(s, spec, &m, &e);
        json_decref(spec);
        json_decref(m);
        store_pool_put(shared_pool, s);
        if (rc != 0)
            return (void *)1;
    }
    return NULL;
}

Test(store, pool_serves_concurrent_writers)
{
    srv_err e = {0};
    cr_assert_eq(store_pool_open(db_path, 3, &shared_pool, &e), 0, "%s", e.msg);
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&t[i], NULL, pool_worker, (void *)(intptr_t)i);
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r);
    }
    store *s = store_pool_get(shared_pool);
    json_t *list = NULL;
    cr_assert_eq(store_model_list(s, &ALL, &list, &e), 0);
    cr_assert_eq(json_array_size(list), 60);
    json_decref(list);
    store_pool_put(shared_pool, s);
    store_pool_close(shared_pool);
}

Test(store, pool_refuses_newer_schema)
{
    store_close(open_ok());
    raw_exec(db_path, "PRAGMA user_version = 9");
    store_pool *p = NULL;
    srv_err e = {0};
    cr_assert_eq(store_pool_open(db_path, 2, &p, &e), -1);
    cr_assert_null(p);
    cr_assert_not_null(strstr(e.msg, "upgrade backpropd"), "%s", e.msg);
}

Test(store, busy_database_is_unavailable_not_a_hang, .timeout = 30)
{
    store *s = open_ok();
    /* Another writer holds the write lock past the 5 s busy timeout. */
    sqlite3 *other;
    cr_assert_eq(sqlite3_open_v2(db_path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    json_t *spec = spec_of("late", 2, 2, "softmax", "cross_entropy");
    json_t *m = NULL;
    srv_err e = {0};
    cr_assert_eq(store_model_create(s, spec, &m, &e), -1);
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%d %s", e.code, e.msg);
    cr_assert_not_null(strstr(e.msg, "busy"), "%s", e.msg);
    /* Reads are not blocked by a writer (WAL). */
    json_t *list = NULL;
    cr_assert_eq(store_model_list(s, &ALL, &list, &e), 0, "%s", e.msg);
    json_decref(list);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    /* Once the lock is gone the same write succeeds. */
    cr_assert_eq(store_model_create(s, spec, &m, &e), 0, "%s", e.msg);
    json_decref(m);
    json_decref(spec);
    store_close(s);
}

Test(job_status, names_round_trip_and_unknown_ones_are_refused)
{
    static const char *const want[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    cr_assert_eq(JOB_STATUS_COUNT, 5);
    for (int i = 0; i < JOB_STATUS_COUNT; i++) {
        job_status s;
        cr_expect_str_eq(job_status_name((job_status)i), want[i]);
        cr_expect_eq(job_status_parse(want[i], &s), 0);
        cr_expect_eq(s, (job_status)i);
        cr_expect_eq(job_status_final((job_status)i), i >= JOB_SUCCEEDED, "%s", want[i]);
    }
    job_status s = JOB_RUNNING;
    cr_expect_eq(job_status_parse("Running", &s), -1);
    cr_expect_eq(job_status_parse("", &s), -1);
    cr_expect_eq(job_status_parse(NULL, &s), -1);
    cr_expect_eq(s, JOB_RUNNING, "a refused name leaves *out alone");
    cr_expect_null(job_status_name(JOB_STATUS_COUNT));
}

/* The stored shape columns and the inline-data check are one rule: a
 * one-wide target counts as class indices only up to 2^24 (integers a
 * float holds exactly); they once disagreed (2^32 in the store). */
Test(store, stored_shape_is_the_fit_rule)
{
    static const float tops[] = {2.0f, 16777216.0f, 33554432.0f, 4294967296.0f, 2.5f, -1.0f};
    store *s = open_ok();
    for (size_t k = 0; k < sizeof tops / sizeof tops[0]; k++) {
        ds_data *d = make_data(4, 2, 0);
        char name[32];
        fit_shape want, got;
        srv_err e = {0};
        d->target_width = 1;
        for (uint32_t r = 0; r < 4; r++)
            d->Y[r] = r == 3 ? tops[k] : (float)r;
        snprintf(name, sizeof name, "t%zu", k);
        create_dataset(s, name, d);
        fit_shape_of(d, &want);
        cr_assert_eq(store_dataset_shape(s, name, &got, &e), 0, "%s", e.msg);
        cr_expect_eq(got.integer_targets, want.integer_targets, "top %g", (double)tops[k]);
        cr_expect_eq(got.max_target, want.max_target, "top %g", (double)tops[k]);
        cr_expect_eq(got.integer_targets, k < 2, "top %g", (double)tops[k]);
        ds_data_free(d);
    }
    store_close(s);
}
