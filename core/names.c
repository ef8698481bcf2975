/*
 * names.c - the API spellings of the engine's enums and status codes.
 * Activations are spelled by their rows of bp_acts (core/act.c).
 */
#include "internal.h"

#include <string.h>

static const char *const loss_names[] = {"mse", "cross_entropy", "binary_cross_entropy"};
static const char *const init_names[] = {"auto", "he", "xavier"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *bp_status_str(bp_status s)
{
    switch (s) {
    case BP_OK: return "ok";
    case BP_EINVAL: return "invalid argument";
    case BP_ENOMEM: return "out of memory";
    case BP_EFORMAT: return "malformed data";
    case BP_EVERSION: return "unsupported format version";
    case BP_ECHECKSUM: return "checksum mismatch";
    case BP_ENUMERIC: return "numeric failure";
    case BP_ECANCELLED: return "cancelled";
    }
    return "unknown status";
}

const char *bp_activation_name(bp_activation a)
{
    return bp_act_known(a) ? bp_acts[a].name : NULL;
}

bp_init bp_activation_init(bp_activation a)
{
    return bp_act_known(a) ? bp_acts[a].init : BP_INIT_AUTO;
}

int bp_activation_listed(unsigned i, bp_activation *out)
{
    for (int a = 0; a < BP_ACT_COUNT; a++)
        if (bp_acts[a].listed == i) {
            *out = (bp_activation)a;
            return 0;
        }
    return -1;
}

const char *bp_loss_name(bp_loss l)
{
    return (unsigned)l < N_OF(loss_names) ? loss_names[l] : NULL;
}

const char *bp_init_name(bp_init i)
{
    return (unsigned)i < N_OF(init_names) ? init_names[i] : NULL;
}

static int parse(const char *s, const char *const *names, size_t n)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

int bp_activation_parse(const char *s, bp_activation *out)
{
    if (!s || !out)
        return -1;
    for (int a = 0; a < BP_ACT_COUNT; a++)
        if (strcmp(s, bp_acts[a].name) == 0) {
            *out = (bp_activation)a;
            return 0;
        }
    return -1;
}

int bp_loss_parse(const char *s, bp_loss *out)
{
    int i = parse(s, loss_names, N_OF(loss_names));
    if (i < 0 || !out)
        return -1;
    *out = (bp_loss)i;
    return 0;
}

int bp_init_parse(const char *s, bp_init *out)
{
    int i = parse(s, init_names, N_OF(init_names));
    if (i < 0 || !out)
        return -1;
    *out = (bp_init)i;
    return 0;
}
