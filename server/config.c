/*
 * config.c - the daemon's settings: one table of options, each a flag
 * (--name value or --name=value) with a matching BACKPROPD_* variable.
 * A flag wins over its variable; the variable is then not even parsed, so a
 * stale bad value in the environment cannot block a good flag.  Integers
 * are parsed strictly (digits only, range checked) and every error names
 * the flag or variable and what was expected.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* OPT_FLAG takes no value on the command line (--insecure); its variable
 * and --flag=value take 1/0, true/false, yes/no. */
typedef enum {
    OPT_STR, OPT_BIND, OPT_INT, OPT_UINT, OPT_U32, OPT_U64, OPT_SIZE, OPT_LEVEL, OPT_FLAG
} opt_type;

typedef struct {
    const char *flag;   /* without the leading "--" */
    const char *env;
    opt_type type;
    size_t offset;      /* into srv_config */
    size_t size;        /* OPT_STR: buffer size */
    uint64_t min, max;  /* integers */
    const char *help;
    const char *def;    /* default as shown by --help */
} opt_def;

#define OFF(f) offsetof(srv_config, f)
#define LIM(f) (offsetof(srv_config, limits) + offsetof(srv_limits, f))

static const opt_def opts[] = {
    {"bind", "BACKPROPD_BIND", OPT_BIND, OFF(bind), sizeof(((srv_config *)0)->bind), 0, 0,
     "address to listen on: an IPv4 or IPv6 literal or localhost", "127.0.0.1"},
    {"port", "BACKPROPD_PORT", OPT_INT, OFF(port), 0, 0, 65535,
     "TCP port (0: any free port)", "8080"},
    {"db", "BACKPROPD_DB", OPT_STR, OFF(db), sizeof(((srv_config *)0)->db), 0, 0,
     "SQLite database file (created with its directory if missing)", "./data/backpropd.db"},
    {"workers", "BACKPROPD_WORKERS", OPT_INT, OFF(workers), 0, 1, 1024,
     "training worker threads", "number of cores"},
    {"http-threads", "BACKPROPD_HTTP_THREADS", OPT_INT, OFF(http_threads), 0, 1, 1024,
     "HTTP threads", "number of cores"},
    {"max-body", "BACKPROPD_MAX_BODY", OPT_SIZE, LIM(max_body), 0, 1, (uint64_t)1 << 40,
     "largest request body in bytes", "67108864 (64 MiB)"},
    {"max-queued", "BACKPROPD_MAX_QUEUED", OPT_UINT, OFF(max_queued), 0, 1, 100000000,
     "most jobs waiting in the queue (more: 429)", "1000"},
    {"cors-origin", "BACKPROPD_CORS_ORIGIN", OPT_STR, OFF(cors_origin),
     sizeof(((srv_config *)0)->cors_origin), 0, 0,
     "allowed CORS origins, comma-separated, or *", "none: no CORS headers"},
    {"log-level", "BACKPROPD_LOG_LEVEL", OPT_LEVEL, OFF(log_level), 0, 0, 0,
     "debug, info, warn or error", "info"},
    {"conn-timeout", "BACKPROPD_CONN_TIMEOUT", OPT_INT, OFF(conn_timeout), 0, 1, 86400,
     "seconds an idle connection is kept", "30"},
    {"insecure", "BACKPROPD_INSECURE", OPT_FLAG, OFF(insecure), 0, 0, 1,
     "listen on a non-loopback --bind even though the database holds no active API key",
     "off"},
    {"max-streams", "BACKPROPD_MAX_STREAMS", OPT_UINT, OFF(max_streams), 0, 1, 100000,
     "most event streams open at once (more: 429); each holds a connection", "100"},
    {"events-keepalive-ms", "BACKPROPD_EVENTS_KEEPALIVE_MS", OPT_UINT, OFF(keepalive_ms), 0, 10,
     3600000,
     "milliseconds between the keep-alive comments of an event stream (they also find "
     "clients that went away; short values are for tests)",
     "15000"},
    {"metrics-max-models", "BACKPROPD_METRICS_MAX_MODELS", OPT_UINT, OFF(metrics_max_models), 0,
     1, 10000, "models with their own label in /metrics; the others share model=\"other\"",
     "100"},
    {"max-layers", "BACKPROPD_MAX_LAYERS", OPT_U32, LIM(max_layers), 0, 1, 1024,
     "most layers in a model", "64"},
    {"max-units", "BACKPROPD_MAX_UNITS", OPT_U32, LIM(max_units), 0, 1, 1u << 24,
     "most units in one layer", "65536"},
    {"max-params", "BACKPROPD_MAX_PARAMS", OPT_U64, LIM(max_params), 0, 1, (uint64_t)1 << 31,
     "most parameters in a model", "50000000"},
    {"max-features", "BACKPROPD_MAX_FEATURES", OPT_U32, LIM(max_features), 0, 1, 1u << 24,
     "most feature columns in a data set", "65536"},
    {"max-cells", "BACKPROPD_MAX_CELLS", OPT_U64, LIM(max_cells), 0, 1, (uint64_t)1 << 34,
     "most values (rows x columns) in one upload", "16777216"},
    {"max-classes", "BACKPROPD_MAX_CLASSES", OPT_U32, LIM(max_classes), 0, 2, 65536,
     "most class names in a data set", "65536"},
    {"max-epochs", "BACKPROPD_MAX_EPOCHS", OPT_U32, LIM(max_epochs), 0, 1, 1000000000,
     "most epochs a job may ask for", "100000"},
    {"max-batch", "BACKPROPD_MAX_BATCH", OPT_U32, LIM(max_batch), 0, 1, 1u << 24,
     "largest batch_size", "65536"},
    {"max-predict-rows", "BACKPROPD_MAX_PREDICT_ROWS", OPT_U32, LIM(max_predict_rows), 0, 1,
     1u << 24, "most rows in one prediction request", "65536"},
    {"max-predict-cells", "BACKPROPD_MAX_PREDICT_CELLS", OPT_U64, LIM(max_predict_cells), 0, 1,
     (uint64_t)1 << 34, "most output values (rows x outputs) in one prediction answer",
     "16777216"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 1024 ? 1024 : (int)n;
}

static void config_default(srv_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "127.0.0.1");
    c->port = 8080;
    snprintf(c->db, sizeof c->db, "./data/backpropd.db");
    c->workers = cores();
    c->http_threads = cores();
    c->max_queued = 1000;
    c->cors_origin[0] = '\0';
    c->log_level = LOG_INFO;
    c->conn_timeout = 30;
    c->max_streams = 100;
    c->keepalive_ms = 15000;
    c->metrics_max_models = 100;
    limits_default(&c->limits);
}

void config_usage(FILE *to)
{
    fprintf(to,
            "usage: backpropd [options]\n"
            "\n"
            "Trains and serves multi-layer perceptrons over HTTP.  Every option can also\n"
            "be set by its environment variable; a flag wins over the variable.\n"
            "Options take a value as --name value or --name=value.\n"
            "\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s", opts[i].flag);
        fprintf(to, "  %-20s %s\n  %-20s default: %s; env %s\n", left, opts[i].help, "",
                opts[i].def, opts[i].env);
    }
    fprintf(to, "  %-20s %s\n", "--help, -h", "print this help and exit");
    fprintf(to,
            "\n"
            "API keys (the same database the daemon uses; it may be running):\n"
            "  backpropd keys create --name NAME [--scope predict|train|admin] [--db PATH]\n"
            "  backpropd keys list [--db PATH]\n"
            "  backpropd keys revoke NAME [--db PATH]\n"
            "The environment variable BACKPROPD_ADMIN_KEY (or BACKPROPD_ADMIN_KEY_FILE, a\n"
            "file holding it) creates that admin key at start-up when it is not stored yet.\n");
}

/* "what was expected" for an integer option, for error messages. */
static void expected_int(const opt_def *o, char *buf, size_t len)
{
    snprintf(buf, len, "an integer from %" PRIu64 " to %" PRIu64, o->min, o->max);
}

/* Applies one value to c.  `who` is the flag ("--port") or the variable
 * ("BACKPROPD_PORT") for the error message. */
static int opt_apply(srv_config *c, const opt_def *o, const char *val, const char *who)
{
    char *base = (char *)c;
    char exp[96];

    switch (o->type) {
    case OPT_STR:
    case OPT_BIND: {
        size_t n = strlen(val);
        if (o->type == OPT_STR && o->offset == OFF(db) && n == 0) {
            fprintf(stderr, "backpropd: %s: expected a file path, got an empty value\n", who);
            return -1;
        }
        if (n >= o->size) {
            fprintf(stderr, "backpropd: %s: expected at most %zu bytes, got %zu\n", who,
                    o->size - 1, n);
            return -1;
        }
        if (o->type == OPT_BIND) {
            unsigned char addr[16];
            char tmp[64];
            /* Accept [::1] as well as ::1. */
            if (n >= 2 && val[0] == '[' && val[n - 1] == ']') {
                memcpy(tmp, val + 1, n - 2);
                tmp[n - 2] = '\0';
            } else {
                memcpy(tmp, val, n + 1);
            }
            if (strcmp(tmp, "localhost") != 0 && inet_pton(AF_INET, tmp, addr) != 1 &&
                inet_pton(AF_INET6, tmp, addr) != 1) {
                fprintf(stderr,
                        "backpropd: %s: expected an IPv4 or IPv6 address or localhost, "
                        "got \"%s\"\n",
                        who, val);
                return -1;
            }
            memcpy(base + o->offset, tmp, strlen(tmp) + 1);
            return 0;
        }
        memcpy(base + o->offset, val, n + 1);
        return 0;
    }
    case OPT_FLAG: {
        static const char *const on[] = {"1", "true", "yes", "on"};
        static const char *const off[] = {"0", "false", "no", "off"};
        for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
            if (strcmp(val, on[i]) == 0 || strcmp(val, off[i]) == 0) {
                *(int *)(void *)(base + o->offset) = strcmp(val, on[i]) == 0;
                return 0;
            }
        }
        fprintf(stderr, "backpropd: %s: expected 1, 0, true or false, got \"%s\"\n", who, val);
        return -1;
    }
    case OPT_LEVEL: {
        int lv = log_level_parse(val);
        if (lv < 0) {
            fprintf(stderr, "backpropd: %s: expected one of debug, info, warn, error, got \"%s\"\n",
                    who, val);
            return -1;
        }
        *(int *)(void *)(base + o->offset) = lv;
        return 0;
    }
    default:
        break;
    }

    /* Integers: digits only (no sign, no spaces, no suffix), in range. */
    const char *p = val;
    uint64_t v = 0;
    expected_int(o, exp, sizeof exp);
    if (*p == '\0') {
        fprintf(stderr, "backpropd: %s: expected %s, got an empty value\n", who, exp);
        return -1;
    }
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p)) {
            fprintf(stderr, "backpropd: %s: expected %s, got \"%s\"\n", who, exp, val);
            return -1;
        }
        if (v > (UINT64_MAX - 9) / 10) {
            fprintf(stderr, "backpropd: %s: expected %s, got \"%s\"\n", who, exp, val);
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < o->min || v > o->max) {
        fprintf(stderr, "backpropd: %s: expected %s, got %s\n", who, exp, val);
        return -1;
    }
    switch (o->type) {
    case OPT_INT:
        *(int *)(void *)(base + o->offset) = (int)v;
        break;
    case OPT_UINT:
        *(unsigned *)(void *)(base + o->offset) = (unsigned)v;
        break;
    case OPT_U32:
        *(uint32_t *)(void *)(base + o->offset) = (uint32_t)v;
        break;
    case OPT_U64:
        *(uint64_t *)(void *)(base + o->offset) = v;
        break;
    case OPT_SIZE:
        *(size_t *)(void *)(base + o->offset) = (size_t)v;
        break;
    default:
        break;
    }
    return 0;
}

static const opt_def *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

int config_parse(srv_config *c, int argc, char **argv)
{
    const char *given[N_OPTS] = {0};
    char who[96];

    config_default(c);

    /* --help wins over everything, even a bad flag next to it. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_usage(stdout);
            return 1;
        }
    }

    /* Pass 1: collect the flags (the last of a repeated flag wins). */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq, *name, *val;
        const opt_def *o;
        size_t nlen;

        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            fprintf(stderr, "backpropd: unexpected argument \"%s\"; expected --flag value (see --help)\n",
                    a);
            return -1;
        }
        name = a + 2;
        eq = strchr(name, '=');
        nlen = eq ? (size_t)(eq - name) : strlen(name);
        o = opt_find(name, nlen);
        if (!o) {
            fprintf(stderr, "backpropd: unknown flag --%.*s (see --help)\n", (int)nlen, name);
            return -1;
        }
        if (eq) {
            val = eq + 1;
        } else if (o->type == OPT_FLAG) {
            val = "1"; /* a bare --insecure */
        } else {
            if (i + 1 >= argc) {
                char exp[96];
                if (o->type == OPT_STR || o->type == OPT_BIND || o->type == OPT_LEVEL)
                    snprintf(exp, sizeof exp, "%s", o->help);
                else
                    expected_int(o, exp, sizeof exp);
                fprintf(stderr, "backpropd: --%s: missing value; expected %s\n", o->flag, exp);
                return -1;
            }
            val = argv[++i];
        }
        given[o - opts] = val;
    }

    /* Pass 2: each option from its flag, else its variable, else the default. */
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *val = given[i];
        if (val) {
            snprintf(who, sizeof who, "--%s", opts[i].flag);
        } else {
            val = getenv(opts[i].env);
            /* An empty variable is treated as unset (docker -e X= ...). */
            if (!val || !*val)
                continue;
            snprintf(who, sizeof who, "%s (--%s)", opts[i].env, opts[i].flag);
        }
        if (opt_apply(c, &opts[i], val, who) != 0)
            return -1;
    }
    return 0;
}
