/*
 * dataset.c - ownership of an in-memory data set (ds_data): allocation and
 * the one function that frees everything it holds.
 */
#include "decode/dataset.h"

#include <stdlib.h>

ds_data *ds_data_new(void)
{
    return calloc(1, sizeof(ds_data));
}

void ds_data_free(ds_data *d)
{
    if (!d)
        return;
    free(d->X);
    free(d->Y);
    free(d->labels);
    if (d->class_names) {
        /* n_classes names, each malloc()'d; NULL entries are tolerated so a
         * half-built ds_data on an error path frees cleanly. */
        for (uint32_t i = 0; i < d->n_classes; i++)
            free(d->class_names[i]);
        free(d->class_names);
    }
    free(d);
}
