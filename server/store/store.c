/*
 * store.c - the store's connection: opening a database (pragmas, embedded
 * migrations, refusing a newer schema), the per-connection cache of
 * prepared statements (each file keeps its own SQL), transactions, error mapping, the
 * helpers shared by store_models.c / store_datasets.c / store_jobs.c, and
 * the connection pool.
 */
#include "store/store.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "json/jsonx.h"
#include "store/store_internal.h"

/* The statements this file runs (store_internal.h: store_sql); every
 * value is bound, nothing is ever formatted into SQL. */
static store_sql sql_begin = {.sql = "BEGIN IMMEDIATE"};
static store_sql sql_commit = {.sql = "COMMIT"};
static store_sql sql_rollback = {.sql = "ROLLBACK"};


/* ---- statements, transactions, errors ---- */

/* The errno of the last failed system call on the database's WAL (or
 * rollback journal), else on the database file; 0 when none.  SQLite
 * reports a write refused by the filesystem as a generic I/O error
 * (SQLITE_IOERR_WRITE, ...) and sqlite3_system_errno() is not set for
 * errors raised at COMMIT, but each unix VFS file keeps its own. */
static int store_last_errno(struct store *s)
{
    int err = 0;
    sqlite3_file *j = NULL;
    if (!s || !s->db)
        return 0;
    if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &j) == SQLITE_OK && j &&
        j->pMethods && j->pMethods->xFileControl)
        j->pMethods->xFileControl(j, SQLITE_FCNTL_LAST_ERRNO, &err);
    if (!err)
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_LAST_ERRNO, &err);
    return err;
}

/* 1 when the database cannot be written because its filesystem is
 * read-only: mounted so (statvfs), or turned so under us, as ext4 does
 * after a disk error (EROFS, while the mount flags still say rw). */
static int store_fs_read_only(struct store *s)
{
    if (store_last_errno(s) == EROFS)
        return 1;
    const char *path = s && s->db ? sqlite3_db_filename(s->db, "main") : NULL;
    struct statvfs v;
    return path && *path && statvfs(path, &v) == 0 && (v.f_flag & ST_RDONLY);
}

int store_fail(struct store *s, int rc, const char *what, srv_err *e)
{
    const char *detail = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    /* A connection that met a read-only or failing file may keep what it
     * learnt then (SQLite opens a file it cannot write read-only, and keeps
     * it so): once the fault is undone, only a new connection writes. */
    if (s && ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_IOERR ||
              (rc & 0xff) == SQLITE_CANTOPEN))
        s->stale = 1;
    /* Which of the conditions an operator can fix it is, rather than
     * "i/o error". */
    if (((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN) && store_fs_read_only(s))
        return err_set(e, ERR_UNAVAILABLE,
                       "database is read-only: its filesystem is mounted read-only (while %s)",
                       what);
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return err_set(e, ERR_UNAVAILABLE,
                       "database is full; free disk space and retry (while %s)", what);
    case SQLITE_READONLY:
        return err_set(e, ERR_UNAVAILABLE,
                       "database is read-only; check the permissions of the database file "
                       "and its directory (while %s)",
                       what);
    case SQLITE_IOERR:
        return err_set(e, ERR_UNAVAILABLE, "database i/o error (%s); check the disk (while %s)",
                       detail, what);
    case SQLITE_CANTOPEN:
        return err_set(e, ERR_UNAVAILABLE,
                       "cannot open the database file (%s); check its path and permissions "
                       "(while %s)",
                       detail, what);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return err_set(e, ERR_UNAVAILABLE,
                       "database is busy: another writer held it for more than 5 s; retry "
                       "(while %s)",
                       what);
    case SQLITE_NOMEM:
        return err_set(e, ERR_UNAVAILABLE, "out of memory (while %s)", what);
    case SQLITE_TOOBIG:
        return err_set(e, ERR_PAYLOAD_TOO_LARGE, "value too large to store (while %s)", what);
    case SQLITE_CONSTRAINT:
        return err_set(e, ERR_CONFLICT, "%s: %s", what, detail);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return err_set(e, ERR_INTERNAL, "database file is corrupt (%s) (while %s)", detail,
                       what);
    default:
        return err_set(e, ERR_INTERNAL, "database error: %s (while %s)", detail, what);
    }
}

/* The next free slot of the statement caches (store_sql.slot). */
static atomic_int next_slot;

static int stmt_slot(store_sql *q, srv_err *e)
{
    int k = atomic_load_explicit(&q->slot, memory_order_acquire);
    if (k == 0) {
        int mine = atomic_fetch_add(&next_slot, 1) + 1;
        /* Two threads may number the same statement at once: one wins,
         * the other's number stays unused. */
        k = atomic_compare_exchange_strong(&q->slot, &(int){0}, mine) ? mine
                                                                       : atomic_load(&q->slot);
    }
    if (k > STORE_MAX_STMTS)
        return err_set(e, ERR_INTERNAL, "store: more than %d statements (STORE_MAX_STMTS)",
                       STORE_MAX_STMTS);
    return k - 1;
}

sqlite3_stmt *store_stmt(struct store *s, store_sql *q, srv_err *e)
{
    int k = stmt_slot(q, e);
    sqlite3_stmt *st;
    if (k < 0)
        return NULL;
    if ((st = s->q[k])) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    int rc = sqlite3_prepare_v3(s->db, q->sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        store_fail(s, rc, "preparing a statement", e);
        return NULL;
    }
    s->q[k] = st;
    return st;
}

void store_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int store_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what, srv_err *e)
{
    int rc = sqlite3_step(st);
    store_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_fail(s, rc, what, e);
    return 0;
}

static int store_run(struct store *s, store_sql *q, const char *what, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, q, e);
    if (!st)
        return -1;
    return store_exec_stmt(s, st, what, e);
}

int store_begin(struct store *s, srv_err *e)
{
    return store_run(s, &sql_begin, "starting a transaction", e);
}

int store_commit(struct store *s, srv_err *e)
{
    if (store_run(s, &sql_commit, "committing", e) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

void store_rollback(struct store *s)
{
    /* Some errors (FULL, IOERR, NOMEM) roll back by themselves; a
     * ROLLBACK without a transaction would only add a second error. */
    if (sqlite3_get_autocommit(s->db))
        return;
    if (store_run(s, &sql_rollback, "rolling back", NULL) < 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- column and binding helpers ---- */

int store_bind_real(sqlite3_stmt *st, int i, double x)
{
    if (!isfinite(x))
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_double(st, i, x);
}

json_t *store_col_real(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    json_t *v = jsonx_real(sqlite3_column_double(st, i));
    return v ? v : json_null();
}

json_t *store_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return json_null();
    return json_stringn((const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

json_t *store_col_json(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return json_null();
    return json_loadb((const char *)t, (size_t)sqlite3_column_bytes(st, i), 0, NULL);
}

char *store_class_names_json(const ds_data *d, int *err)
{
    *err = 0;
    if (!d->class_names || d->n_classes == 0)
        return NULL;
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < d->n_classes; i++) {
        const char *n = d->class_names[i] ? d->class_names[i] : "";
        if (json_array_append_new(a, json_string(n)) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        *err = 1;
    return text;
}

/* The BLOBs are little-endian whatever the host; on the usual
 * little-endian host they are the arrays themselves. */
static int host_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap32(void *dst, const void *src, size_t n)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++, s += 4, d += 4) {
        unsigned char t0 = s[0], t1 = s[1];
        d[0] = s[3];
        d[1] = s[2];
        d[2] = t1;
        d[3] = t0;
    }
}

/* Binds n 32-bit values as a little-endian BLOB (SQLITE_STATIC: the
 * buffer outlives the step; a swapped copy goes to *slot). */
static int bind_le32(sqlite3_stmt *st, int i, const void *p, uint64_t n, void **slot)
{
    if (!p)
        return sqlite3_bind_null(st, i);
    if (n > UINT64_MAX / 4)
        return SQLITE_TOOBIG;
    if (host_little_endian())
        return sqlite3_bind_blob64(st, i, p, n * 4, SQLITE_STATIC);
    if (n > SIZE_MAX / 4)
        return SQLITE_TOOBIG;
    void *copy = malloc((size_t)n * 4);
    if (!copy)
        return SQLITE_NOMEM;
    swap32(copy, p, (size_t)n);
    *slot = copy;
    return sqlite3_bind_blob64(st, i, copy, n * 4, SQLITE_STATIC);
}

void store_bound_free(store_bound *tmp)
{
    for (size_t i = 0; i < sizeof tmp->bufs / sizeof tmp->bufs[0]; i++) {
        free(tmp->bufs[i]);
        tmp->bufs[i] = NULL;
    }
}

static int data_valid(const ds_data *d, srv_err *e)
{
    if (d->rows == 0 || d->features == 0 || !d->X)
        return err_set(e, ERR_INTERNAL, "store: data set has no rows or no features");
    if (d->target_width > 0) {
        if (!d->Y)
            return err_set(e, ERR_INTERNAL, "store: data set without targets");
        return 0;
    }
    if (!d->labels || d->n_classes == 0)
        return err_set(e, ERR_INTERNAL, "store: data set without targets or labels");
    for (uint32_t r = 0; r < d->rows; r++)
        if (d->labels[r] < 0 || (uint32_t)d->labels[r] >= d->n_classes)
            return err_set(e, ERR_INTERNAL, "store: label %ld of row %u out of range",
                           (long)d->labels[r], r);
    return 0;
}

int store_bind_data(sqlite3_stmt *st, int first, const ds_data *d, store_bound *tmp, srv_err *e)
{
    memset(tmp, 0, sizeof *tmp);
    if (data_valid(d, e) < 0)
        return -1;
    fit_shape sh;
    fit_shape_of(d, &sh);
    int cerr;
    char *names = store_class_names_json(d, &cerr);
    if (cerr)
        return err_set(e, ERR_INTERNAL, "out of memory");
    tmp->bufs[0] = names;
    uint64_t cells = (uint64_t)d->rows * d->features;
    int i = first, rc = SQLITE_OK;
    rc |= sqlite3_bind_int64(st, i++, d->rows);
    rc |= sqlite3_bind_int64(st, i++, d->features);
    rc |= sqlite3_bind_int64(st, i++, d->target_width);
    rc |= sqlite3_bind_int64(st, i++, d->target_width ? 0 : d->n_classes);
    rc |= names ? sqlite3_bind_text(st, i, names, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
    i++;
    rc |= sqlite3_bind_int64(st, i++, sh.integer_targets);
    rc |= sqlite3_bind_int64(st, i++, sh.max_target);
    if (rc == SQLITE_OK)
        rc = bind_le32(st, i, d->X, cells, &tmp->bufs[1]);
    i++;
    if (rc == SQLITE_OK)
        rc = bind_le32(st, i, d->target_width ? d->Y : NULL,
                       (uint64_t)d->rows * d->target_width, &tmp->bufs[2]);
    i++;
    if (rc == SQLITE_OK)
        rc = bind_le32(st, i, d->target_width ? NULL : d->labels, d->rows, &tmp->bufs[3]);
    if (rc != SQLITE_OK) {
        store_bound_free(tmp);
        if (rc == SQLITE_TOOBIG)
            return err_set(e, ERR_PAYLOAD_TOO_LARGE,
                           "data set too large to store: %u rows x %u features", d->rows,
                           d->features);
        return err_set(e, ERR_INTERNAL, "store: binding the data set failed (%s)",
                       sqlite3_errstr(rc));
    }
    return 0;
}

/* Copies a BLOB column of exactly n 32-bit values out of the row; a size
 * that disagrees with the shape means a damaged row, never trusted. */
static int copy_le32(sqlite3_stmt *st, int col, uint64_t n, void **out, const char *what,
                     const char *part, srv_err *e)
{
    *out = NULL;
    const void *p = sqlite3_column_blob(st, col);
    uint64_t have = (uint64_t)sqlite3_column_bytes(st, col);
    if (n > SIZE_MAX / 4 || have != n * 4 || !p)
        return err_set(e, ERR_INTERNAL,
                       "%s: stored %s has %llu bytes, expected %llu; the row is damaged", what,
                       part, (unsigned long long)have, (unsigned long long)(n * 4));
    void *buf = malloc((size_t)n * 4);
    if (!buf)
        return err_set(e, ERR_INTERNAL, "out of memory loading %s", what);
    if (host_little_endian())
        memcpy(buf, p, (size_t)n * 4);
    else
        swap32(buf, p, (size_t)n);
    *out = buf;
    return 0;
}

/* Copies n 32-bit little-endian values into host order, in place. */
void store_le32_to_host(void *buf, size_t n)
{
    if (!host_little_endian())
        swap32(buf, buf, n);
}

int store_col_class_names(sqlite3_stmt *st, int col, uint32_t nc, const char *what,
                          char ***out, srv_err *e)
{
    *out = NULL;
    json_t *names = store_col_json(st, col);
    if (!names)
        return err_set(e, ERR_INTERNAL, "%s: stored class names are damaged", what);
    if (!json_is_array(names)) {
        json_decref(names);
        return 0;
    }
    if (json_array_size(names) != (size_t)nc) {
        json_decref(names);
        return err_set(e, ERR_INTERNAL, "%s: stored class names disagree with %u classes", what,
                       nc);
    }
    char **v = calloc(nc ? nc : 1, sizeof *v);
    for (size_t i = 0; v && i < nc; i++) {
        const char *n = json_string_value(json_array_get(names, i));
        if (!(v[i] = strdup(n ? n : ""))) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            v = NULL;
        }
    }
    json_decref(names);
    if (!v)
        return err_set(e, ERR_INTERNAL, "out of memory loading %s", what);
    *out = v;
    return 0;
}

int store_col_shape(sqlite3_stmt *st, int first, const char *what, ds_data *d, srv_err *e)
{
    memset(d, 0, sizeof *d);
    sqlite3_int64 rows = sqlite3_column_int64(st, first);
    sqlite3_int64 features = sqlite3_column_int64(st, first + 1);
    sqlite3_int64 tw = sqlite3_column_int64(st, first + 2);
    sqlite3_int64 nc = sqlite3_column_int64(st, first + 3);
    if (rows <= 0 || rows > UINT32_MAX || features <= 0 || features > UINT32_MAX || tw < 0 ||
        tw > UINT32_MAX || nc < 0 || nc > UINT32_MAX || (tw == 0 && nc == 0))
        return err_set(e, ERR_INTERNAL, "%s: stored shape is damaged", what);
    d->rows = (uint32_t)rows;
    d->features = (uint32_t)features;
    d->target_width = (uint32_t)tw;
    d->n_classes = tw ? 0 : (uint32_t)nc;
    return 0;
}

int store_read_data(sqlite3_stmt *st, int first, const char *what, ds_data **out, srv_err *e)
{
    *out = NULL;
    ds_data shape;
    if (store_col_shape(st, first, what, &shape, e) < 0)
        return -1;
    sqlite3_int64 rows = shape.rows, features = shape.features, tw = shape.target_width,
                  nc = shape.n_classes;
    ds_data *d = ds_data_new();
    if (!d)
        return err_set(e, ERR_INTERNAL, "out of memory loading %s", what);
    d->rows = (uint32_t)rows;
    d->features = (uint32_t)features;
    d->target_width = (uint32_t)tw;
    void *p;
    if (copy_le32(st, first + 5, (uint64_t)rows * (uint64_t)features, &p, what, "matrix", e) < 0)
        goto fail;
    d->X = p;
    if (tw > 0) {
        if (copy_le32(st, first + 6, (uint64_t)rows * (uint64_t)tw, &p, what, "targets", e) < 0)
            goto fail;
        d->Y = p;
    } else {
        if (copy_le32(st, first + 7, (uint64_t)rows, &p, what, "labels", e) < 0)
            goto fail;
        d->labels = p;
        d->n_classes = (uint32_t)nc;
        for (uint32_t r = 0; r < d->rows; r++)
            if (d->labels[r] < 0 || d->labels[r] >= nc) {
                err_set(e, ERR_INTERNAL, "%s: stored label of row %u is out of range", what, r);
                goto fail;
            }
        if (store_col_class_names(st, first + 4, (uint32_t)nc, what, &d->class_names, e) < 0)
            goto fail;
    }
    *out = d;
    return 0;
fail:
    ds_data_free(d);
    return -1;
}

/* ---- opening and migrating ---- */

/* Runs one constant statement (a PRAGMA) and reads its first integer
 * column when it returns a row. */
static int pragma_int(sqlite3 *db, const char *sql, sqlite3_int64 *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (out)
                *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* The schema version the file records: the larger of PRAGMA user_version
 * and the highest row of schema_migrations (either alone suffices). */
static int recorded_version(struct store *s, int *version, srv_err *e)
{
    sqlite3_int64 uv = 0, has = 0, mx = 0;
    int rc = pragma_int(s->db, "PRAGMA user_version", &uv);
    if (rc == SQLITE_OK)
        rc = pragma_int(s->db,
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                        "AND name = 'schema_migrations'",
                        &has);
    if (rc == SQLITE_OK && has)
        rc = pragma_int(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", &mx);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "reading the schema version", e);
    *version = (int)(uv > mx ? uv : mx);
    return 0;
}

static int too_new(int version, srv_err *e)
{
    return err_set(e, ERR_UNAVAILABLE,
                   "database schema version %d is newer than this backpropd (knows %d); "
                   "upgrade backpropd",
                   version, store_migrations_count);
}

static int apply_migration(struct store *s, const struct store_migration *m, srv_err *e)
{
    char what[128];
    snprintf(what, sizeof what, "applying migration %04d_%s", m->version, m->name);
    if (store_begin(s, e) < 0)
        return err_prefix(e, "%s", what);
    /* Another process may have migrated since we looked: decide again
     * under the write lock. */
    int now;
    if (recorded_version(s, &now, e) < 0)
        goto fail;
    if (now >= m->version) {
        if (now > store_migrations_count) {
            too_new(now, e);
            goto fail;
        }
        return store_commit(s, e);
    }
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, m->sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        /* A plain SQL error is a bug in the migration: show SQLite's text. */
        if ((rc & 0xff) == SQLITE_ERROR)
            err_set(e, ERR_INTERNAL, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
        else
            store_fail(s, rc, what, e);
        sqlite3_free(msg);
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db,
                            "INSERT INTO schema_migrations(version, name, applied_at) "
                            "VALUES (?1, ?2, " NOW ")",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) {
        /* PRAGMA takes no parameters; the value is our own integer. */
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        rc = sqlite3_exec(s->db, pragma, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        store_fail(s, rc, what, e);
        goto fail;
    }
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

static int store_migrate(struct store *s, srv_err *e)
{
    int version;
    if (recorded_version(s, &version, e) < 0)
        return -1;
    if (version > store_migrations_count)
        return too_new(version, e);
    for (int i = 0; i < store_migrations_count; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (m->version != i + 1)
            return err_set(e, ERR_INTERNAL, "store: embedded migration %d is numbered %d", i + 1,
                           m->version);
        if (m->version <= version)
            continue;
        if (apply_migration(s, m, e) < 0)
            return -1;
    }
    return recorded_version(s, &s->version, e);
}

int store_open(const char *path, store **out, srv_err *e)
{
    *out = NULL;
    /* Job ids come from randombytes_buf; sodium_init is idempotent and
     * thread-safe. */
    if (sodium_init() < 0)
        return err_set(e, ERR_INTERNAL, "libsodium failed to initialize");
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_INTERNAL, "out of memory");
    /* One connection per thread (store_pool), so SQLite's own mutexes are
     * not needed.  URI names ("file:...?mode=ro") are accepted. */
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_URI,
                             NULL);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_UNAVAILABLE, "cannot open database %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);

    /* WAL is persistent in the file; on a read-only file that is not yet
     * WAL the pragma cannot switch, and reads still work. */
    rc = pragma_int(s->db, "PRAGMA journal_mode = WAL", NULL);
    if (rc != SQLITE_OK && !sqlite3_db_readonly(s->db, "main")) {
        store_fail(s, rc, "opening the database", e);
        goto fail;
    }
    rc = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_fail(s, rc, "opening the database", e);
        goto fail;
    }
    /* Migrations run with foreign keys off (a table rebuild in a later
     * migration must not cascade); they are switched on afterwards, for
     * the life of the connection. */
    if (store_migrate(s, e) < 0) {
        err_prefix(e, "database %s", path);
        goto fail;
    }
    rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_fail(s, rc, "opening the database", e);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

void store_close(store *s)
{
    if (!s)
        return;
    for (int i = 0; i < STORE_MAX_STMTS; i++)
        sqlite3_finalize(s->q[i]);
    sqlite3_close(s->db);
    free(s);
}

int store_writable(store *s, srv_err *e)
{
    const char *path = sqlite3_db_filename(s->db, "main");
    char wal[4096];
    struct statvfs vfs;
    if (!path || !*path)
        return 0; /* in memory */
    if (statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        return err_set(e, ERR_UNAVAILABLE, "the database's filesystem is mounted read-only");
    if (statvfs(path, &vfs) == 0 && vfs.f_bavail == 0)
        return err_set(e, ERR_UNAVAILABLE, "the disk holding the database is full");
    /* Opening for writing, which writes nothing, is refused for a file made
     * read-only or immutable (chattr +i) while the daemon runs. */
    snprintf(wal, sizeof wal, "%s-wal", path);
    const char *const files[] = {path, wal};
    for (int i = 0; i < 2; i++) {
        int fd = open(files[i], O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        } else if (errno != ENOENT) {
            return err_set(e, ERR_UNAVAILABLE, "the database file %s cannot be written: %s",
                           files[i], strerror(errno));
        }
    }
    return 0;
}

int store_schema_version(store *s)
{
    return s->version;
}

/* ---- pool ---- */

struct store_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *path;
    int size;       /* most connections ever open */
    int opened;     /* open now (free or handed out) */
    int nfree;
    store **free;   /* size slots */
};

int store_pool_open(const char *path, int size, store_pool **out, srv_err *e)
{
    *out = NULL;
    if (size < 1)
        size = 1;
    store_pool *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_INTERNAL, "out of memory");
    p->path = strdup(path);
    p->free = calloc((size_t)size, sizeof *p->free);
    if (!p->path || !p->free) {
        free(p->path);
        free(p->free);
        free(p);
        return err_set(e, ERR_INTERNAL, "out of memory");
    }
    p->size = size;
    /* The first connection migrates, so the daemon refuses to start on a
     * bad database instead of failing on the first request. */
    store *s;
    if (store_open(path, &s, e) < 0) {
        free(p->path);
        free(p->free);
        free(p);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->free[p->nfree++] = s;
    p->opened = 1;
    *out = p;
    return 0;
}

void store_pool_close(store_pool *p)
{
    if (!p)
        return;
    /* Callers return every connection before closing the pool. */
    for (int i = 0; i < p->nfree; i++)
        store_close(p->free[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->free);
    free(p->path);
    free(p);
}

store *store_pool_get(store_pool *p)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nfree > 0) {
            store *s = p->free[--p->nfree];
            pthread_mutex_unlock(&p->mu);
            return s;
        }
        if (p->opened < p->size) {
            /* Open outside the lock: it touches the file. */
            p->opened++;
            pthread_mutex_unlock(&p->mu);
            store *s = NULL;
            srv_err e;
            int rc = store_open(p->path, &s, &e);
            pthread_mutex_lock(&p->mu);
            if (rc == 0) {
                pthread_mutex_unlock(&p->mu);
                return s;
            }
            p->opened--;
            /* With no connection left to wait for, give up (NULL). */
            if (p->opened == 0) {
                pthread_mutex_unlock(&p->mu);
                return NULL;
            }
            /* Otherwise wait for one of the open connections. */
            while (p->nfree == 0)
                pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_cond_wait(&p->cv, &p->mu);
    }
}

void store_pool_put(store_pool *p, store *s)
{
    if (!s)
        return;
    /* A caller that failed mid-transaction must not hand on its lock. */
    store_rollback(s);
    pthread_mutex_lock(&p->mu);
    if (s->stale) {
        /* closed; the next store_pool_get opens a fresh one */
        p->opened--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        store_close(s);
        return;
    }
    p->free[p->nfree++] = s;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void store_put(json_t *o, const char *k, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, k, v) < 0)
        *bad = 1;
}

int store_oom(srv_err *e)
{
    return err_set(e, ERR_INTERNAL, "out of memory");
}

int store_row_done(json_t *o, int bad, json_t **out, srv_err *e)
{
    if (bad) {
        json_decref(o);
        return store_oom(e);
    }
    *out = o;
    return 0;
}

int store_fetch_one(struct store *s, store_sql *q, store_row_fn fn, const char *kind,
                    const char *key, json_t **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, q, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r;
    if (rc == SQLITE_ROW)
        r = fn(st, out, e);
    else if (rc == SQLITE_DONE)
        r = err_set(e, ERR_NOT_FOUND, "%s \"%s\" not found", kind, key);
    else {
        char what[64];
        snprintf(what, sizeof what, "reading a %s", kind);
        r = store_fail(s, rc, what, e);
    }
    store_done(st);
    return r;
}

/* Steps st into an array of its rows' objects: at most max of them; *more
 * says a further row was there, cursor (cap bytes, may be NULL) gets the
 * last column of the last row kept.  Resets st. */
static int fetch_rows(struct store *s, sqlite3_stmt *st, store_row_fn fn, const char *what,
                      uint32_t max, int *more, char *cursor, size_t cap, json_t **out, srv_err *e)
{
    uint32_t kept = 0;
    int rc;
    json_t *a = json_array();
    *more = 0;
    if (!a) {
        store_done(st);
        return store_oom(e);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (kept == max) {
            *more = 1;
            rc = SQLITE_DONE;
            break;
        }
        json_t *o;
        int r = fn(st, &o, e);
        if (r == 0 && json_array_append_new(a, o) < 0)
            r = store_oom(e);
        if (r < 0) {
            store_done(st);
            json_decref(a);
            return -1;
        }
        if (cursor) {
            const char *cur = (const char *)sqlite3_column_text(st, sqlite3_column_count(st) - 1);
            snprintf(cursor, cap, "%s", cur ? cur : "");
        }
        kept++;
    }
    store_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(a);
        return store_fail(s, rc, what, e);
    }
    *out = a;
    return 0;
}

int store_fetch_page(struct store *s, sqlite3_stmt *st, store_row_fn fn, const char *what,
                     store_page *pg, json_t **out, srv_err *e)
{
    int more;
    /* one row past the page tells whether another page follows */
    sqlite3_bind_int64(st, sqlite3_bind_parameter_count(st), (sqlite3_int64)pg->limit + 1);
    int rc = fetch_rows(s, st, fn, what, pg->limit, &more, pg->next, sizeof pg->next, out, e);
    if (rc != 0 || !more)
        pg->next[0] = '\0'; /* the rows ran out: this page is the last */
    return rc;
}

int store_fetch_all(struct store *s, sqlite3_stmt *st, store_row_fn fn, const char *what,
                    json_t **out, srv_err *e)
{
    int more;
    return fetch_rows(s, st, fn, what, UINT32_MAX, &more, NULL, 0, out, e);
}
