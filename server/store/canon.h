/*
 * canon.h - the canonical forms the store keeps (a model's spec, a job's
 * params), read
 * back into core's types.  They passed the request decoders when they were
 * written, so anything malformed here is a server fault: ERR_INTERNAL
 * naming the field.
 */
#ifndef SRV_CANON_H
#define SRV_CANON_H

#include <jansson.h>

#include "bp.h"
#include "err.h"

/* A canonical spec -> core's architecture; *layers_out is malloc()'d and
 * owned by the caller, arch->layers points into it. */
int canon_model_arch(const json_t *spec, bp_arch *arch, bp_layer_spec **layers_out, srv_err *e);

/* Canonical params -> core's training configuration (callbacks, cancel and
 * threads left for the caller); *warm_start (may be NULL) from the params. */
int canon_job_config(const json_t *params, bp_train_config *cfg, int *warm_start, srv_err *e);

#endif
