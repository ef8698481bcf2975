/*
 * core_arch.c - the architecture rules as data: bp_arch_validate returns
 * each code for the layer at fault, the field rules agree with it, and
 * bp_arch_check words exactly what bp_arch_validate found.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "bp.h"

/* 5 -> 8 relu -> 4 relu -> 3 softmax, cross_entropy: valid; each test
 * breaks one thing. */
typedef struct {
    bp_layer_spec L[3];
    bp_arch a;
} net;

static void net_init(net *n)
{
    const bp_layer_spec L[3] = {{8, BP_ACT_RELU, 0}, {4, BP_ACT_RELU, 0}, {3, BP_ACT_SOFTMAX, 0}};
    memcpy(n->L, L, sizeof L);
    bp_arch a = {5, 3, n->L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 0};
    n->a = a;
}

static void expect(const bp_arch *a, bp_arch_code code, uint32_t layer)
{
    bp_arch_error e = bp_arch_validate(a);
    cr_assert_eq(e.code, code, "code %d, want %d", (int)e.code, (int)code);
    cr_assert_eq(e.layer, layer, "layer %u, want %u", e.layer, layer);
    /* bp_arch_check is validate + the engine's wording of the same fault */
    char got[256] = "", want[256] = "";
    cr_assert_eq(bp_arch_check(a, got, sizeof got), code == BP_ARCH_OK ? BP_OK : BP_EINVAL);
    if (code != BP_ARCH_OK) {
        bp_arch_error_str(a, e, want, sizeof want);
        cr_assert_str_eq(got, want);
    }
}

Test(arch, valid_is_ok)
{
    net n;
    net_init(&n);
    expect(&n.a, BP_ARCH_OK, 0);
    expect(NULL, BP_ARCH_MISSING, 0);
}

Test(arch, whole_architecture_codes)
{
    net n;
    net_init(&n);
    n.a.inputs = 0;
    expect(&n.a, BP_ARCH_INPUTS, 0);
    n.a.inputs = BP_MAX_UNITS + 1;
    expect(&n.a, BP_ARCH_INPUTS, 0);
    net_init(&n);
    n.a.n_layers = 0;
    expect(&n.a, BP_ARCH_LAYER_COUNT, 0);
    n.a.n_layers = BP_MAX_LAYERS + 1;
    expect(&n.a, BP_ARCH_LAYER_COUNT, 0);
    net_init(&n);
    n.a.layers = NULL;
    expect(&n.a, BP_ARCH_NO_LAYERS, 0);
    net_init(&n);
    n.a.loss = (bp_loss)9;
    expect(&n.a, BP_ARCH_LOSS, 0);
    net_init(&n);
    n.a.init = (bp_init)9;
    expect(&n.a, BP_ARCH_INIT, 0);
}

/* Three layers and a loss, and the fault bp_arch_validate must find. */
typedef struct {
    bp_layer_spec L[3];
    bp_loss loss;
    bp_arch_code code;
    uint32_t layer;
} arch_case;

#define R(u, d) {u, BP_ACT_RELU, d}
#define SM3 {3, BP_ACT_SOFTMAX, 0}
#define CE BP_LOSS_CROSS_ENTROPY
#define U BP_MAX_UNITS

static const arch_case cases[] = {
    {{R(8, 0), R(0, 0), SM3}, CE, BP_ARCH_UNITS, 1},
    {{R(8, 0), R(U + 1, 0), SM3}, CE, BP_ARCH_UNITS, 1},
    {{R(8, 0), R(4, 0), {3, BP_ACT_COUNT, 0}}, CE, BP_ARCH_ACTIVATION, 2},
    {{R(8, 0), {4, BP_ACT_SOFTMAX, 0}, SM3}, CE, BP_ARCH_OUTPUT_ONLY, 1},
    {{R(8, 1.0f), R(4, 0), SM3}, CE, BP_ARCH_DROPOUT, 0},
    {{R(8, -0.25f), R(4, 0), SM3}, CE, BP_ARCH_DROPOUT, 0},
    {{R(8, NAN), R(4, 0), SM3}, CE, BP_ARCH_DROPOUT, 0},
    {{R(8, 0.5f), R(4, 0.5f), SM3}, CE, BP_ARCH_OK, 0},
    {{R(8, 0.5f), R(4, 0), {3, BP_ACT_SOFTMAX, 0.5f}}, CE, BP_ARCH_DROPOUT_OUTPUT, 2},
    /* 2^48 weights in layer 1 */
    {{R(U, 0), R(U, 0), SM3}, CE, BP_ARCH_PARAMS, 1},
    /* the first fault wins: layer 0's before layer 1's */
    {{R(8, 2), R(0, 0), SM3}, CE, BP_ARCH_DROPOUT, 0},
    /* the output layer against the loss */
    {{R(8, 0), R(4, 0), {3, BP_ACT_SIGMOID, 0}}, CE, BP_ARCH_CE_SOFTMAX, 2},
    {{R(8, 0), R(4, 0), {1, BP_ACT_SOFTMAX, 0}}, CE, BP_ARCH_CE_UNITS, 2},
    {{R(8, 0), R(4, 0), SM3}, BP_LOSS_BINARY_CROSS_ENTROPY, BP_ARCH_BCE_SIGMOID, 2},
    {{R(8, 0), R(4, 0), {3, BP_ACT_SIGMOID, 0}}, BP_LOSS_BINARY_CROSS_ENTROPY, BP_ARCH_OK, 0},
    {{R(8, 0), R(4, 0), SM3}, BP_LOSS_MSE, BP_ARCH_SOFTMAX_LOSS, 2},
    {{R(8, 0), R(4, 0), {3, BP_ACT_LINEAR, 0}}, BP_LOSS_MSE, BP_ARCH_OK, 0},
};

Test(arch, each_code_names_its_layer)
{
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const arch_case *c = &cases[k];
        bp_arch a = {5, 3, c->L, c->loss, BP_INIT_AUTO, 0};
        cr_log_info("case %zu", k);
        expect(&a, c->code, c->layer);
    }
    /* one layer: the output layer is layer 0 */
    const bp_layer_spec one = {3, BP_ACT_TANH, 0};
    bp_arch a = {5, 1, &one, CE, BP_INIT_AUTO, 0};
    expect(&a, BP_ARCH_CE_SOFTMAX, 0);
}

/* The field rules a decoder asks one field at a time are the ones
 * bp_arch_validate applies, output-only read from the activation table. */
Test(arch, field_rules)
{
    for (int a = 0; a < BP_ACT_COUNT; a++) {
        bp_arch_code hidden = bp_arch_check_activation((bp_activation)a, 0, 2);
        cr_assert_eq(hidden, a == BP_ACT_SOFTMAX ? BP_ARCH_OUTPUT_ONLY : BP_ARCH_OK, "act %d", a);
        cr_assert_eq(bp_arch_check_activation((bp_activation)a, 1, 2), BP_ARCH_OK);
    }
    cr_assert_eq(bp_arch_check_activation(BP_ACT_COUNT, 1, 2), BP_ARCH_ACTIVATION);
    cr_assert_eq(bp_arch_check_activation((bp_activation)-1, 1, 2), BP_ARCH_ACTIVATION);
    cr_assert_eq(bp_arch_check_dropout(0.0, 0, 2), BP_ARCH_OK);
    cr_assert_eq(bp_arch_check_dropout(-0.0, 1, 2), BP_ARCH_OK);
    cr_assert_eq(bp_arch_check_dropout(0.5, 0, 2), BP_ARCH_OK);
    cr_assert_eq(bp_arch_check_dropout(0.5, 1, 2), BP_ARCH_DROPOUT_OUTPUT);
    cr_assert_eq(bp_arch_check_dropout(-1e-50, 0, 2), BP_ARCH_DROPOUT, "negative before rounding");
    cr_assert_eq(bp_arch_check_dropout(0.99999999999, 0, 2), BP_ARCH_DROPOUT, "1.0f once stored");
    cr_assert_eq(bp_arch_check_dropout(1.0, 1, 2), BP_ARCH_DROPOUT, "range before placement");
    cr_assert_eq(bp_arch_check_dropout(NAN, 0, 2), BP_ARCH_DROPOUT);
    const bp_layer_spec sm1 = {1, BP_ACT_SOFTMAX, 0}, sg = {1, BP_ACT_SIGMOID, 0};
    cr_assert_eq(bp_arch_check_output(BP_LOSS_CROSS_ENTROPY, &sm1), BP_ARCH_CE_UNITS);
    cr_assert_eq(bp_arch_check_output(BP_LOSS_CROSS_ENTROPY, &sg), BP_ARCH_CE_SOFTMAX);
    cr_assert_eq(bp_arch_check_output(BP_LOSS_BINARY_CROSS_ENTROPY, &sg), BP_ARCH_OK);
    cr_assert_eq(bp_arch_check_output(BP_LOSS_MSE, &sg), BP_ARCH_OK);
    cr_assert_eq(bp_arch_check_output((bp_loss)7, &sg), BP_ARCH_LOSS);
}

/* The engine's words for each code, as bp_arch_check gave them before the
 * rules became data. */
Test(arch, engine_wording)
{
    net n;
    net_init(&n);
    char buf[256];
    n.L[1].activation = BP_ACT_SOFTMAX;
    bp_arch_error_str(&n.a, bp_arch_validate(&n.a), buf, sizeof buf);
    cr_assert_str_eq(buf, "layers[1]: softmax is only allowed on the output layer");
    net_init(&n);
    n.L[2].activation = BP_ACT_TANH;
    bp_arch_error_str(&n.a, bp_arch_validate(&n.a), buf, sizeof buf);
    cr_assert_str_eq(buf, "loss cross_entropy needs a softmax output layer, got tanh");
    net_init(&n);
    n.a.loss = BP_LOSS_MSE;
    bp_arch_error_str(&n.a, bp_arch_validate(&n.a), buf, sizeof buf);
    cr_assert_str_eq(buf, "a softmax output layer needs loss cross_entropy, got mse");
    net_init(&n);
    n.L[0].dropout = 1.5f;
    bp_arch_error_str(&n.a, bp_arch_validate(&n.a), buf, sizeof buf);
    cr_assert_str_eq(buf, "layers[0]: dropout must be in [0, 1), got 1.5");
    net_init(&n);
    n.L[0].units = BP_MAX_UNITS;
    n.L[1].units = BP_MAX_UNITS;
    bp_arch_error_str(&n.a, bp_arch_validate(&n.a), buf, sizeof buf);
    cr_assert_str_eq(buf, "too many parameters: more than 2147483648");
    bp_arch_error_str(NULL, bp_arch_validate(NULL), buf, sizeof buf);
    cr_assert_str_eq(buf, "architecture is missing");
}
