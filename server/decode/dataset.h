/*
 * dataset.h - a data set in memory, as uploaded and as fed to training:
 * a float feature matrix plus either numeric targets or class labels.
 */
#ifndef SRV_DATASET_H
#define SRV_DATASET_H

#include <stdint.h>

typedef struct {
    uint32_t rows;
    uint32_t features;
    float *X;               /* rows x features, row-major */
    uint32_t target_width;  /* > 0: numeric targets in Y; 0: class labels */
    float *Y;               /* rows x target_width, or NULL */
    int32_t *labels;        /* rows class indices 0..n_classes-1, or NULL */
    uint32_t n_classes;     /* with labels: number of classes */
    char **class_names;     /* n_classes names in order of first appearance,
                               or NULL for integer labels */
} ds_data;

/* A zeroed ds_data (calloc); NULL on allocation failure. */
ds_data *ds_data_new(void);
/* Frees everything it owns; NULL-safe. */
void ds_data_free(ds_data *d);

#endif
