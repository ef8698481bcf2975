/*
 * onnx.c - the ONNX encoder of a trained model (onnx.h).
 *
 * The graph computes bp_model_predict's outputs, node for node:
 *   input "input", float [N, F] (N symbolic)
 *   with standardization: Sub(input, norm.mean) -> Div(., norm.std), the
 *     std as the model stores it (a zero std is stored as 1, so the graph
 *     divides by exactly what predict divides by);
 *   per layer i: Gemm(x, layer<i>.weight, layer<i>.bias; transB = 1), the
 *     weight [units, fan_in] exactly as the engine stores W (one neuron's
 *     fan-in per row), then the activation: Relu, LeakyRelu(alpha =
 *     BP_LEAKY_RELU_SLOPE), Tanh, Sigmoid, Softmax(axis = -1), nothing
 *     for linear;
 *   output "output", float [N, K]: the last layer's value.
 * Every activation of the engine is one standard operator of opset 13; an
 * activation added to bp.h without a case here fails the build (-Wswitch).
 * Initializers carry little-endian IEEE float raw_data; on a little-endian
 * host they point straight into the model's parameters, so a large model
 * is not copied twice.
 *
 * metadata_props: "model" (its name), "version", "loss", "standardized"
 * ("true"/"false") and, when the model knows them, "classes": its class
 * names as a JSON array, in output order.
 *
 * Every message is allocated from one arena (every pointer kept in a
 * list), so the whole tree goes with one ox_arena_free, whatever failed.
 */
#include "export/onnx.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "onnx.pb-c.h"

/* ---- the arena ---------------------------------------------------------- */

typedef struct {
    void **p;
    size_t n, cap;
    int failed; /* an allocation failed: every later one returns NULL too */
} ox_arena;

static void *ox_keep(ox_arena *ar, void *q)
{
    if (!q || ar->failed) {
        free(q);
        ar->failed = 1;
        return NULL;
    }
    if (ar->n == ar->cap) {
        size_t cap = ar->cap ? 2 * ar->cap : 64;
        void **np = realloc(ar->p, cap * sizeof *np);
        if (!np) {
            free(q);
            ar->failed = 1;
            return NULL;
        }
        ar->p = np;
        ar->cap = cap;
    }
    return ar->p[ar->n++] = q;
}

static void *ox_new(ox_arena *ar, size_t n, size_t size)
{
    return ox_keep(ar, ar->failed ? NULL : calloc(n ? n : 1, size));
}

static char *ox_str(ox_arena *ar, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ox_str(ox_arena *ar, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return ox_keep(ar, n < 0 ? NULL : s);
}

static void ox_arena_free(ox_arena *ar)
{
    for (size_t i = 0; i < ar->n; i++)
        free(ar->p[i]);
    free(ar->p);
}

/* ---- the graph's pieces -------------------------------------------------- */

typedef struct {
    ox_arena ar;
    Onnx__GraphProto *g;
    size_t node_cap, init_cap;
} ox_builder;

/* A float initializer [dims] holding v (n values). */
static void ox_initializer(ox_builder *b, const char *name, const int64_t *dims, size_t ndims,
                           const bp_real *v, size_t n)
{
    Onnx__TensorProto *t = ox_new(&b->ar, 1, sizeof *t);
    int64_t *d = ox_new(&b->ar, ndims, sizeof *d);
    if (!t || !d || b->g->n_initializer == b->init_cap) {
        b->ar.failed = 1;
        return;
    }
    onnx__tensor_proto__init(t);
    memcpy(d, dims, ndims * sizeof *d);
    t->n_dims = ndims;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = ox_str(&b->ar, "%s", name);
    t->has_raw_data = 1;
    t->raw_data.len = n * 4;
    _Static_assert(sizeof(bp_real) == 4, "the server's engine is the float build");
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* only read by the packer; the tree never outlives the model */
    t->raw_data.data = (uint8_t *)(uintptr_t)v;
#else
    uint8_t *raw = ox_new(&b->ar, n, 4);
    if (raw)
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            for (int k = 0; k < 4; k++)
                raw[4 * i + k] = (uint8_t)(u >> (8 * k));
        }
    t->raw_data.data = raw;
#endif
    b->g->initializer[b->g->n_initializer++] = t;
}

/* A node op(inputs) -> output; attributes are added with ox_attr. */
static Onnx__NodeProto *ox_node(ox_builder *b, const char *op, const char *name,
                                const char *const *inputs, size_t nin, const char *output)
{
    Onnx__NodeProto *nd = ox_new(&b->ar, 1, sizeof *nd);
    char **in = ox_new(&b->ar, nin, sizeof *in);
    char **out = ox_new(&b->ar, 1, sizeof *out);
    Onnx__AttributeProto **attrs = ox_new(&b->ar, 1, sizeof *attrs);
    if (!nd || !in || !out || !attrs || b->g->n_node == b->node_cap) {
        b->ar.failed = 1;
        return NULL;
    }
    onnx__node_proto__init(nd);
    for (size_t i = 0; i < nin; i++)
        in[i] = ox_str(&b->ar, "%s", inputs[i]);
    out[0] = ox_str(&b->ar, "%s", output);
    nd->n_input = nin;
    nd->input = in;
    nd->n_output = 1;
    nd->output = out;
    nd->name = ox_str(&b->ar, "%s", name);
    nd->op_type = ox_str(&b->ar, "%s", op);
    nd->attribute = attrs; /* room for the one attribute a node of ours has */
    b->g->node[b->g->n_node++] = nd;
    return nd;
}

/* The node's one attribute: an int (is_int) or a float. */
static void ox_attr(ox_builder *b, Onnx__NodeProto *nd, const char *name, int is_int, int64_t i,
                    float f)
{
    Onnx__AttributeProto *a = ox_new(&b->ar, 1, sizeof *a);
    if (!nd || !a || nd->n_attribute)
        return;
    onnx__attribute_proto__init(a);
    a->name = ox_str(&b->ar, "%s", name);
    a->has_type = 1;
    if (is_int) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = i;
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = f;
    }
    nd->attribute[nd->n_attribute++] = a;
}

/* A graph input or output: float [N, width], N symbolic. */
static Onnx__ValueInfoProto *ox_value_info(ox_builder *b, const char *name, uint32_t width)
{
    Onnx__ValueInfoProto *vi = ox_new(&b->ar, 1, sizeof *vi);
    Onnx__TypeProto *tp = ox_new(&b->ar, 1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox_new(&b->ar, 1, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox_new(&b->ar, 1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ox_new(&b->ar, 2, sizeof *dims);
    Onnx__TensorShapeProto__Dimension *d = ox_new(&b->ar, 2, sizeof *d);
    if (b->ar.failed)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    onnx__tensor_shape_proto__dimension__init(&d[0]);
    onnx__tensor_shape_proto__dimension__init(&d[1]);
    d[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d[0].dim_param = ox_str(&b->ar, "N");
    d[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d[1].dim_value = width;
    dims[0] = &d[0];
    dims[1] = &d[1];
    sh->n_dim = 2;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = ox_str(&b->ar, "%s", name);
    vi->type = tp;
    return vi;
}

/* The operator of an activation (NULL for linear: no node); -1 for one
 * with no ONNX operator. */
static int ox_activation_op(bp_activation a, const char **op)
{
    switch (a) {
    case BP_ACT_LINEAR:
        *op = NULL;
        return 0;
    case BP_ACT_RELU:
        *op = "Relu";
        return 0;
    case BP_ACT_LEAKY_RELU:
        *op = "LeakyRelu";
        return 0;
    case BP_ACT_TANH:
        *op = "Tanh";
        return 0;
    case BP_ACT_SIGMOID:
        *op = "Sigmoid";
        return 0;
    case BP_ACT_SOFTMAX:
        *op = "Softmax";
        return 0;
    case BP_ACT_COUNT:
        break;
    }
    return -1;
}

/* The layers, each Gemm then its activation, from value x on. */
static int ox_layers(ox_builder *b, const bp_model *m, const char *x, srv_err *e)
{
    const bp_real *p = bp_model_params(m);
    const uint32_t L = bp_model_n_layers(m);
    uint32_t fan_in = bp_model_inputs(m);
    char *prev = ox_str(&b->ar, "%s", x);
    for (uint32_t l = 0; l < L; l++) {
        bp_layer_spec ls = bp_model_layer(m, l);
        const char *op;
        if (ox_activation_op(ls.activation, &op) != 0)
            return err_set(e, ERR_INTERNAL, "layer %u: activation %d has no ONNX operator", l,
                           (int)ls.activation);
        char *w = ox_str(&b->ar, "layer%u.weight", l), *bias = ox_str(&b->ar, "layer%u.bias", l);
        char *z = l + 1 == L && !op ? ox_str(&b->ar, "output") : ox_str(&b->ar, "layer%u.gemm", l);
        char *gname = ox_str(&b->ar, "layer%u.gemm", l);
        if (b->ar.failed)
            return err_set(e, ERR_INTERNAL, "out of memory encoding the ONNX model");
        const int64_t wdims[2] = {ls.units, fan_in}, bdims[1] = {ls.units};
        ox_initializer(b, w, wdims, 2, p, (size_t)ls.units * fan_in);
        p += (size_t)ls.units * fan_in;
        ox_initializer(b, bias, bdims, 1, p, ls.units);
        p += ls.units;
        const char *gin[3] = {prev, w, bias};
        ox_attr(b, ox_node(b, "Gemm", gname, gin, 3, z), "transB", 1, 1, 0);
        prev = z;
        if (op) {
            char *h = l + 1 == L ? ox_str(&b->ar, "output") : ox_str(&b->ar, "layer%u.%s", l, op);
            char *aname = ox_str(&b->ar, "layer%u.%s", l, op);
            if (b->ar.failed)
                return err_set(e, ERR_INTERNAL, "out of memory encoding the ONNX model");
            Onnx__NodeProto *nd = ox_node(b, op, aname, (const char *const *)&prev, 1, h);
            if (ls.activation == BP_ACT_LEAKY_RELU)
                ox_attr(b, nd, "alpha", 0, 0, (float)BP_LEAKY_RELU_SLOPE);
            else if (ls.activation == BP_ACT_SOFTMAX)
                ox_attr(b, nd, "axis", 1, -1, 0);
            prev = h;
        }
        fan_in = ls.units;
    }
    return b->ar.failed ? err_set(e, ERR_INTERNAL, "out of memory encoding the ONNX model") : 0;
}

/* The model's class names as a JSON array (arena string), or NULL. */
static char *ox_classes_json(ox_builder *b, const bp_model *m)
{
    uint32_t n = bp_model_n_classes(m);
    json_t *arr = n ? json_array() : NULL;
    for (uint32_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_string(bp_model_class_name(m, i))) != 0)
            b->ar.failed = 1;
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (n && !s)
        b->ar.failed = 1;
    return s ? ox_keep(&b->ar, s) : NULL;
}

static void ox_meta(ox_builder *b, Onnx__ModelProto *mp, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *kv = ox_new(&b->ar, 1, sizeof *kv);
    if (!kv || !value)
        return;
    onnx__string_string_entry_proto__init(kv);
    kv->key = ox_str(&b->ar, "%s", key);
    kv->value = (char *)value;
    mp->metadata_props[mp->n_metadata_props++] = kv;
}

int onnx_export_model(const bp_model *m, const onnx_export_info *info, void **buf, size_t *len,
                      srv_err *e)
{
    *buf = NULL;
    *len = 0;
    ox_builder b = {0};
    const uint32_t L = bp_model_n_layers(m), F = bp_model_inputs(m);
    const int norm = bp_model_has_norm(m);
    b.node_cap = (norm ? 2 : 0) + 2 * (size_t)L;
    b.init_cap = (norm ? 2 : 0) + 2 * (size_t)L;

    Onnx__ModelProto *mp = ox_new(&b.ar, 1, sizeof *mp);
    Onnx__OperatorSetIdProto *ops = ox_new(&b.ar, 1, sizeof *ops);
    Onnx__OperatorSetIdProto **opsv = ox_new(&b.ar, 1, sizeof *opsv);
    Onnx__GraphProto *g = ox_new(&b.ar, 1, sizeof *g);
    Onnx__NodeProto **nodes = ox_new(&b.ar, b.node_cap, sizeof *nodes);
    Onnx__TensorProto **inits = ox_new(&b.ar, b.init_cap, sizeof *inits);
    Onnx__ValueInfoProto **gin = ox_new(&b.ar, 1, sizeof *gin);
    Onnx__ValueInfoProto **gout = ox_new(&b.ar, 1, sizeof *gout);
    Onnx__StringStringEntryProto **meta = ox_new(&b.ar, 5, sizeof *meta);
    int rc = -1;
    if (b.ar.failed) {
        err_set(e, ERR_INTERNAL, "out of memory encoding the ONNX model");
        goto out;
    }
    onnx__model_proto__init(mp);
    onnx__operator_set_id_proto__init(ops);
    onnx__graph_proto__init(g);
    b.g = g;
    g->node = nodes;
    g->initializer = inits;
    g->name = ox_str(&b.ar, "%s", info->model);
    g->n_input = 1;
    g->input = gin;
    gin[0] = ox_value_info(&b, "input", F);
    g->n_output = 1;
    g->output = gout;
    gout[0] = ox_value_info(&b, "output", bp_model_outputs(m));

    const char *x = "input";
    if (norm) {
        const int64_t dims[1] = {F};
        ox_initializer(&b, "norm.mean", dims, 1, bp_model_norm_mean(m), F);
        ox_initializer(&b, "norm.std", dims, 1, bp_model_norm_std(m), F);
        const char *sub_in[2] = {"input", "norm.mean"}, *div_in[2] = {"input.centered", "norm.std"};
        ox_node(&b, "Sub", "standardize.sub", sub_in, 2, "input.centered");
        ox_node(&b, "Div", "standardize.div", div_in, 2, "input.standardized");
        x = "input.standardized";
    }
    if (ox_layers(&b, m, x, e) != 0)
        goto out;

    mp->has_ir_version = 1;
    mp->ir_version = ONNX_IR_VERSION;
    ops->domain = ox_str(&b.ar, "%s", ""); /* the default domain, ai.onnx */
    ops->has_version = 1;
    ops->version = ONNX_OPSET;
    opsv[0] = ops;
    mp->n_opset_import = 1;
    mp->opset_import = opsv;
    mp->producer_name = ox_str(&b.ar, "backpropd");
    mp->producer_version = ox_str(&b.ar, "%s", BACKPROPD_VERSION);
    mp->has_model_version = 1;
    mp->model_version = info->version;
    mp->doc_string = ox_str(&b.ar, "backpropd model \"%s\" version %u: input [N, %u] float, output [N, %u] float",
                            info->model, info->version, F, bp_model_outputs(m));
    mp->graph = g;
    mp->metadata_props = meta;
    ox_meta(&b, mp, "model", ox_str(&b.ar, "%s", info->model));
    ox_meta(&b, mp, "version", ox_str(&b.ar, "%u", info->version));
    ox_meta(&b, mp, "loss", ox_str(&b.ar, "%s", bp_loss_name(bp_model_loss(m))));
    ox_meta(&b, mp, "standardized", ox_str(&b.ar, "%s", norm ? "true" : "false"));
    ox_meta(&b, mp, "classes", ox_classes_json(&b, m));
    if (b.ar.failed) {
        err_set(e, ERR_INTERNAL, "out of memory encoding the ONNX model");
        goto out;
    }

    size_t n = onnx__model_proto__get_packed_size(mp);
    if (n > ONNX_MAX_BYTES) {
        err_set(e, ERR_UNPROCESSABLE,
                "model \"%s\" version %u encodes to %zu bytes, past the 2 GiB an ONNX file can hold",
                info->model, info->version, n);
        goto out;
    }
    uint8_t *bytes = malloc(n ? n : 1);
    if (!bytes) {
        err_set(e, ERR_INTERNAL, "out of memory for the %zu-byte ONNX model", n);
        goto out;
    }
    onnx__model_proto__pack(mp, bytes);
    *buf = bytes;
    *len = n;
    rc = 0;
out:
    ox_arena_free(&b.ar);
    return rc;
}
