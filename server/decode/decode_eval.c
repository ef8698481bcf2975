/*
 * decode_eval.c - POST /v1/models/{name}/evaluate bodies: where the data
 * comes from (a stored data set or inline data, as a job takes it) and the
 * version to score (a number or a label, as predict takes it).
 */
#include "decode/decode.h"
#include "decode/decode_internal.h"

static const char *const eval_keys[] = {"dataset", "data", "version"};

int decode_evaluate_streamed(const json_t *body, jsonstream_result *pre, const srv_limits *lim,
                             const char **dataset, ds_data **inline_out, uint32_t *version,
                             srv_err *e)
{
    char got[96];
    const json_t *data;
    *dataset = NULL;
    *inline_out = NULL;
    *version = 0;
    if (!json_is_object(body)) {
        dq_describe(body, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (dq_check_keys(body, "", eval_keys, sizeof eval_keys / sizeof eval_keys[0], e) ||
        dq_version(body, version, e) || dq_data_source(body, dataset, &data, e))
        return -1;
    if (data && dq_data(data, "data", lim, 0, pre ? pre->field : NULL, inline_out, e))
        return -1;
    return 0;
}
