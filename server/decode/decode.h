/*
 * decode.h - request bodies to validated values.  Handlers call these at
 * the edge, so the store, the workers and core see only valid data.  Every
 * error names the field (e.g. "layers[1].activation") and what was
 * expected.  Unknown fields are rejected (ERR_INVALID_ARGUMENT).
 */
#ifndef SRV_DECODE_H
#define SRV_DECODE_H

#include <jansson.h>
#include <stdint.h>

#include "bp.h"
#include "decode/dataset.h"
#include "err.h"
#include "name.h"
#include "srv_limits.h"

struct jsonstream_result;


/* POST /v1/models body -> the canonical model spec (new reference):
 * {"name","inputs","layers":[{"units","activation","dropout"}],"loss",
 *  "init","seed","parameters"} with init filled in when omitted ("he" when
 * the hidden layers are of the relu family or there are none and the output
 * is relu, else "xavier"), dropout 0 filled in, parameters computed.
 * Checks limits before anything proportional is allocated and the
 * loss/output agreement rules (400 with the reason). */
int decode_model(const json_t *body, const srv_limits *lim, json_t **spec_out, srv_err *e);

/* POST /v1/datasets JSON body: {"name", "inputs", "targets"|"labels"}. */
int decode_dataset(const json_t *body, const srv_limits *lim, char name[NAME_MAX_LEN + 1],
                   ds_data **out, srv_err *e);

/* {"inputs", "targets"|"labels"} (a dataset body without name, or a job's
 * "data"); `field` prefixes messages ("data" -> "data.inputs[3][1]: ..."). */
int decode_data(const json_t *obj, const char *field, const srv_limits *lim, ds_data **out,
                srv_err *e);

/* POST /v1/jobs body -> canonical params (new reference) with every
 * default filled in:
 * {"model","dataset"|null,"epochs","batch_size","optimizer":{"type",
 *  "learning_rate",("momentum","nesterov")|("beta1","beta2","epsilon"),
 *  "schedule":{"type",("step_size","gamma")}},"l2","validation_split",
 *  "shuffle","seed","normalize":"none"|"standard","early_stopping":
 *  null|{"patience","min_delta"},"warm_start"}
 * plus "data":{"rows","features"} for inline data, whose values go to
 * *inline_out (NULL when the job names a dataset). */
int decode_job(const json_t *body, const srv_limits *lim, json_t **params_out,
               ds_data **inline_out, srv_err *e);

/* POST /v1/models/{name}/predict body: {"inputs":[[...]], "version"?}.
 * *X is malloc()'d rows x cols; *version 0 when omitted (latest). */
/* The label a decoded predict body names as its "version" ("production"),
 * or NULL when it gives a number or nothing. */
const char *decode_predict_label(const json_t *body);
int decode_predict(const json_t *body, const srv_limits *lim, uint32_t *version, float **X,
                   uint32_t *rows, uint32_t *cols, srv_err *e);

/* The same three for a body read by jsonstream (http.c): body is the
 * result's tree, and the data arrays it already holds as matrices are
 * taken from pre (moved into the output, their pointers in pre set to
 * NULL; whatever is left stays pre's to free).  pre NULL: everything is in
 * body, as for the functions above (which are these with pre NULL). */
int decode_dataset_streamed(const json_t *body, struct jsonstream_result *pre,
                            const srv_limits *lim, char name[NAME_MAX_LEN + 1], ds_data **out,
                            srv_err *e);
int decode_job_streamed(const json_t *body, struct jsonstream_result *pre, const srv_limits *lim,
                        json_t **params_out, ds_data **inline_out, srv_err *e);
int decode_predict_streamed(const json_t *body, struct jsonstream_result *pre,
                            const srv_limits *lim, uint32_t *version, float **X, uint32_t *rows,
                            uint32_t *cols, srv_err *e);

/* POST /v1/models/{name}/evaluate body: {"dataset": name} or {"data":
 * {"inputs","targets"|"labels"}} (exactly one), and "version" as predict
 * takes it (a number, *version; or a label, decode_predict_label; *version
 * 0 for neither).  *dataset is borrowed from body; *inline_out is the
 * inline data (NULL with a dataset).  pre as the other _streamed
 * decoders (the route reads data.* as a job's). */
int decode_evaluate_streamed(const json_t *body, struct jsonstream_result *pre,
                             const srv_limits *lim, const char **dataset, ds_data **inline_out,
                             uint32_t *version, srv_err *e);

#endif
