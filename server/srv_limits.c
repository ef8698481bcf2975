/*
 * limits.c - the default request limits (config.c overrides them from
 * flags and the environment).
 */
#include "srv_limits.h"

void limits_default(srv_limits *l)
{
    l->max_layers = 64;
    l->max_units = 65536;
    l->max_params = 50000000;
    l->max_features = 65536;
    l->max_cells = (uint64_t)16 << 20;
    l->max_classes = 65536;
    l->max_epochs = 100000;
    l->max_batch = 65536;
    l->max_predict_rows = 65536;
    l->max_predict_cells = (uint64_t)16 << 20;
    l->max_body = (size_t)64 << 20;
}
