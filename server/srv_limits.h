/*
 * limits.h - the request limits, one place for every rule of size.  The
 * values come from the configuration (flags/env) and are checked at the
 * edge, before anything large is allocated.
 */
#ifndef SRV_LIMITS_H
#define SRV_LIMITS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t max_layers;      /* default 64 */
    uint32_t max_units;       /* default 65536, per layer */
    uint64_t max_params;      /* default 50,000,000 */
    uint32_t max_features;    /* default 65536 columns */
    uint64_t max_cells;       /* default 16M floats in one upload (rows x cols) */
    uint32_t max_classes;     /* default 65536 */
    uint32_t max_epochs;      /* default 100000 */
    uint32_t max_batch;       /* default 65536 */
    uint32_t max_predict_rows;/* default 65536 */
    uint64_t max_predict_cells;/* default 16M outputs (rows x outputs) in one answer */
    size_t max_body;          /* bytes, default 64 MiB */
} srv_limits;

void limits_default(srv_limits *l);

#endif
