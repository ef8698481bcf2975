/*
 * server_fit.c - fitting data to a model's output (server/decode/fit.c): which
 * data trains which output layer, the 422 messages naming the widths that
 * disagree, and the dense targets checked value by value.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "decode/fit.h"

/* A ds_data owning copies of the given arrays (NULL to leave out). */
static ds_data *fit_data(uint32_t rows, uint32_t features, uint32_t tw, const float *Y,
                         const int32_t *labels, uint32_t n_classes)
{
    ds_data *d = ds_data_new();
    cr_assert_not_null(d);
    d->rows = rows;
    d->features = features;
    d->X = calloc((size_t)rows * features, sizeof(float));
    d->target_width = tw;
    if (Y) {
        d->Y = malloc((size_t)rows * tw * sizeof(float));
        memcpy(d->Y, Y, (size_t)rows * tw * sizeof(float));
    }
    if (labels) {
        d->labels = malloc(rows * sizeof(int32_t));
        memcpy(d->labels, labels, rows * sizeof(int32_t));
        d->n_classes = n_classes;
    }
    return d;
}

/* inputs -> [hidden relu 8] -> units x act */
typedef struct {
    bp_layer_spec layers[2];
    bp_arch arch;
} fit_model;

static void fit_arch(fit_model *m, uint32_t inputs, uint32_t units, bp_activation act, bp_loss loss)
{
    m->layers[0] = (bp_layer_spec){.units = 8, .activation = BP_ACT_RELU};
    m->layers[1] = (bp_layer_spec){.units = units, .activation = act};
    m->arch = (bp_arch){.inputs = inputs, .n_layers = 2, .layers = m->layers, .loss = loss};
}

static void fit_expect_422(const ds_data *d, const bp_arch *a, const char *msg)
{
    fit_shape s;
    srv_err e = {0};
    fit_shape_of(d, &s);
    cr_expect_eq(fit_check(&s, a, &e), -1, "accepted; want %s", msg);
    cr_expect_eq(e.code, ERR_UNPROCESSABLE, "code %d (%s)", e.code, e.msg);
    cr_expect_str_eq(e.msg, msg);
    float *Y = (float *)1;
    cr_expect_eq(fit_targets(d, a, &Y, &e), -1);
    cr_expect_null(Y);
}

static void fit_expect_Y(const ds_data *d, const bp_arch *a, const float *want, size_t n)
{
    srv_err e = {0};
    float *Y = NULL;
    cr_assert_eq(fit_targets(d, a, &Y, &e), 0, "%s", e.msg);
    for (size_t i = 0; i < n; i++)
        cr_expect_float_eq(Y[i], want[i], 0, "Y[%zu]", i);
    free(Y);
}

Test(fit, shape_of_detects_integer_targets)
{
    fit_shape s;
    const float ints[] = {0, 2, 1, 2.0f};
    ds_data *d = fit_data(4, 3, 1, ints, NULL, 0);
    fit_shape_of(d, &s);
    cr_expect_eq(s.rows, 4);
    cr_expect_eq(s.features, 3);
    cr_expect_eq(s.target_width, 1);
    cr_expect_eq(s.integer_targets, 1);
    cr_expect_eq(s.max_target, 2);
    ds_data_free(d);

    const float *not_ints[] = {(const float[]){0, 0.5f}, (const float[]){0, -1},
                               (const float[]){0, 1e30f}};
    for (int i = 0; i < 3; i++) {
        d = fit_data(2, 1, 1, not_ints[i], NULL, 0);
        fit_shape_of(d, &s);
        cr_expect_eq(s.integer_targets, 0, "case %d", i);
        ds_data_free(d);
    }
    const float wide[] = {0, 1, 1, 0};
    d = fit_data(2, 1, 2, wide, NULL, 0);
    fit_shape_of(d, &s);
    cr_expect_eq(s.integer_targets, 0, "only one-wide targets are class indices");
    ds_data_free(d);

    const int32_t lab[] = {0, 1, 2};
    d = fit_data(3, 2, 0, NULL, lab, 3);
    fit_shape_of(d, &s);
    cr_expect_eq(s.target_width, 0);
    cr_expect_eq(s.n_classes, 3);
    ds_data_free(d);
}

Test(fit, labels_become_one_hot_rows)
{
    fit_model m;
    fit_arch(&m, 2, 3, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    const int32_t lab[] = {2, 0, 1, 0};
    ds_data *d = fit_data(4, 2, 0, NULL, lab, 3);
    const float want[] = {0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0};
    fit_expect_Y(d, &m.arch, want, 12);

    fit_arch(&m, 2, 4, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    fit_expect_422(d, &m.arch,
                   "dataset has 3 classes but the model's softmax output has 4 units; they must be "
                   "equal");
    fit_arch(&m, 2, 3, BP_ACT_LINEAR, BP_LOSS_MSE);
    fit_expect_422(d, &m.arch,
                   "dataset has class labels (3 classes) but the model's output layer is 3 linear "
                   "units; labels need a softmax output of 3 units");
    fit_arch(&m, 2, 1, BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY);
    fit_expect_422(d, &m.arch,
                   "dataset has 3 classes but the model's single sigmoid output needs exactly 2");
    fit_arch(&m, 5, 3, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    fit_expect_422(d, &m.arch, "dataset has 2 features but the model expects 5 inputs");
    ds_data_free(d);
}

Test(fit, two_classes_for_a_single_sigmoid)
{
    fit_model m;
    fit_arch(&m, 1, 1, BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY);
    const int32_t lab[] = {1, 0, 0, 1, 1};
    ds_data *d = fit_data(5, 1, 0, NULL, lab, 2);
    const float want[] = {1, 0, 0, 1, 1};
    fit_expect_Y(d, &m.arch, want, 5);

    /* and the same labels for a softmax of 2 */
    fit_arch(&m, 1, 2, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    const float hot[] = {0, 1, 1, 0, 1, 0, 0, 1, 0, 1};
    fit_expect_Y(d, &m.arch, hot, 10);

    fit_arch(&m, 1, 2, BP_ACT_TANH, BP_LOSS_MSE);
    fit_expect_422(d, &m.arch,
                   "dataset has class labels (2 classes) but the model's output layer is 2 tanh "
                   "units; labels need a softmax output of 2 units or a single sigmoid unit");
    ds_data_free(d);
}

Test(fit, integer_targets_map_like_labels)
{
    fit_model m;
    fit_arch(&m, 1, 3, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    const float y[] = {1, 2, 0};
    ds_data *d = fit_data(3, 1, 1, y, NULL, 0);
    const float want[] = {0, 1, 0, 0, 0, 1, 1, 0, 0};
    fit_expect_Y(d, &m.arch, want, 9);

    fit_arch(&m, 1, 4, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    fit_expect_422(d, &m.arch,
                   "dataset targets are class indices 0..2 (3 classes) but the model's softmax "
                   "output has 4 units; they must be equal");
    ds_data_free(d);

    /* 0/1 targets for a single sigmoid stay as they are */
    fit_arch(&m, 1, 1, BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY);
    const float b[] = {0, 1, 1};
    d = fit_data(3, 1, 1, b, NULL, 0);
    fit_expect_Y(d, &m.arch, b, 3);
    ds_data_free(d);

    /* non-integer one-wide targets do not fit a softmax */
    fit_arch(&m, 1, 3, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    const float r[] = {0.5f, 1, 2};
    d = fit_data(3, 1, 1, r, NULL, 0);
    fit_expect_422(d, &m.arch, "dataset targets are 1 wide but the model's output layer has 3 units");
    ds_data_free(d);
}

Test(fit, numeric_targets_match_the_output_width)
{
    fit_model m;
    fit_arch(&m, 2, 2, BP_ACT_LINEAR, BP_LOSS_MSE);
    const float y[] = {0.5f, -1, 3, 4.25f};
    ds_data *d = fit_data(2, 2, 2, y, NULL, 0);
    fit_expect_Y(d, &m.arch, y, 4);

    /* probability rows for a softmax of the same width are used as given */
    fit_arch(&m, 2, 2, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY);
    fit_expect_Y(d, &m.arch, y, 4);

    fit_arch(&m, 2, 3, BP_ACT_LINEAR, BP_LOSS_MSE);
    fit_expect_422(d, &m.arch, "dataset targets are 2 wide but the model's output layer has 3 units");
    fit_arch(&m, 2, 1, BP_ACT_LINEAR, BP_LOSS_MSE);
    fit_expect_422(d, &m.arch, "dataset targets are 2 wide but the model's output layer has 1 unit");
    fit_arch(&m, 1, 2, BP_ACT_LINEAR, BP_LOSS_MSE);
    fit_expect_422(d, &m.arch, "dataset has 2 features but the model expects 1 input");
    ds_data_free(d);
}
