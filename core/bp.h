/*
 * bp.h - the backpropd engine: multi-layer perceptrons trained by
 * backpropagation over vectorized mini-batches.
 *
 * The engine does no I/O and keeps no global state; every object is owned
 * by its creator and freed with its matching _free() (all NULL-safe).
 *
 * Ownership rules:
 *   - const pointer arguments are borrowed for the call only, never kept;
 *   - buffers returned through void ** are malloc()'d: the caller free()s;
 *   - functions that fail write nothing to their out-parameters and, when
 *     given an err buffer, put one lowercase sentence there explaining why.
 *
 * Thread safety: a bp_model is read-only during bp_model_predict(), so any
 * number of threads may predict on one model at once, each with its own
 * scratch buffer.  A bp_trainer mutates its model and must be driven by one
 * thread (it may start helper threads of its own, see bp_train_config).
 */
#ifndef BP_H
#define BP_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

/* The shipped build uses float; -DBP_DOUBLE compiles the engine in double
 * precision (used by the gradient-check tests). */
#ifdef BP_DOUBLE
typedef double bp_real;
#else
typedef float bp_real;
#endif

/* Hard ceilings of the engine itself.  The server applies its own, smaller
 * and configurable, limits before ever calling in here. */
#define BP_MAX_LAYERS 1024u
#define BP_MAX_UNITS (1u << 24)
#define BP_MAX_PARAMS ((uint64_t)1 << 31)
#define BP_MAX_CLASSES 65536u
#define BP_MAX_CLASS_NAME 1024u

typedef enum {
    BP_OK = 0,
    BP_EINVAL,     /* an argument breaks the documented contract */
    BP_ENOMEM,     /* an allocation failed */
    BP_EFORMAT,    /* a serialized blob is truncated or malformed */
    BP_EVERSION,   /* a blob from an unknown (newer) format version */
    BP_ECHECKSUM,  /* a blob whose checksum does not match */
    BP_ENUMERIC,   /* the loss became NaN or infinite */
    BP_ECANCELLED  /* the cancel flag was raised */
} bp_status;

const char *bp_status_str(bp_status s);

/* Each activation is one row of core's table (core/act.c): its name, the
 * init BP_INIT_AUTO picks for it, its kernels, whether it is output-only.
 * The values are part of saved models' architecture: never renumber. */
typedef enum {
    BP_ACT_LINEAR = 0,
    BP_ACT_RELU,
    BP_ACT_LEAKY_RELU, /* slope BP_LEAKY_RELU_SLOPE below zero */
    BP_ACT_TANH,
    BP_ACT_SIGMOID,
    BP_ACT_SOFTMAX,    /* output layer only */
    BP_ACT_COUNT       /* not an activation: how many there are */
} bp_activation;

/* leaky_relu's slope below zero, as a bp_real: the kernels' (core/act.c)
 * and the ONNX export's LeakyRelu alpha (server/export/onnx.c). */
#define BP_LEAKY_RELU_SLOPE 0.01

typedef enum {
    BP_LOSS_MSE = 0,                /* mean over rows and outputs of (a-y)^2 */
    BP_LOSS_CROSS_ENTROPY,          /* softmax output, >= 2 units */
    BP_LOSS_BINARY_CROSS_ENTROPY    /* sigmoid output */
} bp_loss;

typedef enum {
    BP_INIT_AUTO = 0, /* He for the relu family, Xavier otherwise */
    BP_INIT_HE,
    BP_INIT_XAVIER
} bp_init;

/* Names as the API spells them ("relu", "cross_entropy", "he"); the parsers
 * return 0 and set *out on success, -1 for an unknown name. */
const char *bp_activation_name(bp_activation a);
const char *bp_loss_name(bp_loss l);
const char *bp_init_name(bp_init i);
int bp_activation_parse(const char *s, bp_activation *out);
int bp_loss_parse(const char *s, bp_loss *out);
int bp_init_parse(const char *s, bp_init *out);

/* The activations in the order the API lists them (openapi.yaml's enum):
 * sets *out to the i-th and returns 0, or returns -1 past the last. */
int bp_activation_listed(unsigned i, bp_activation *out);
/* The scheme BP_INIT_AUTO draws a layer of activation a with: BP_INIT_HE
 * for the relu family, BP_INIT_XAVIER otherwise (BP_INIT_AUTO if a is not
 * an activation). */
bp_init bp_activation_init(bp_activation a);

typedef struct {
    uint32_t units;
    bp_activation activation;
    float dropout; /* hidden layers only: 0 <= p < 1 */
} bp_layer_spec;

typedef struct {
    uint32_t inputs;
    uint32_t n_layers;           /* hidden layers plus the output layer */
    const bp_layer_spec *layers; /* n_layers entries */
    bp_loss loss;
    bp_init init;                /* BP_INIT_AUTO picks per layer */
    uint64_t seed;               /* seeds the weight initialization */
} bp_arch;

/* ---- architecture rules -------------------------------------------------
 * Core finds what is wrong with an architecture and says so as data; the
 * caller words it (bp_arch_check in the engine's words, the server in the
 * API's, with its own field paths). */

typedef enum {
    BP_ARCH_OK = 0,
    BP_ARCH_MISSING,        /* no architecture at all */
    BP_ARCH_INPUTS,         /* inputs not in 1..BP_MAX_UNITS */
    BP_ARCH_LAYER_COUNT,    /* n_layers not in 1..BP_MAX_LAYERS */
    BP_ARCH_NO_LAYERS,      /* layers is NULL */
    BP_ARCH_LOSS,           /* loss is not a bp_loss */
    BP_ARCH_INIT,           /* init is not a bp_init */
    BP_ARCH_UNITS,          /* layer: units not in 1..BP_MAX_UNITS */
    BP_ARCH_ACTIVATION,     /* layer: activation is not a bp_activation */
    BP_ARCH_OUTPUT_ONLY,    /* layer: an output-only activation (softmax) on a hidden layer */
    BP_ARCH_DROPOUT,        /* layer: dropout not in [0, 1) */
    BP_ARCH_DROPOUT_OUTPUT, /* layer: dropout on the output layer */
    BP_ARCH_PARAMS,         /* layer: the parameters up to it pass BP_MAX_PARAMS */
    BP_ARCH_CE_SOFTMAX,     /* output layer: cross_entropy needs softmax */
    BP_ARCH_CE_UNITS,       /* output layer: cross_entropy needs 2 units or more */
    BP_ARCH_BCE_SIGMOID,    /* output layer: binary_cross_entropy needs sigmoid */
    BP_ARCH_SOFTMAX_LOSS    /* output layer: softmax needs cross_entropy */
} bp_arch_code;

typedef struct {
    bp_arch_code code;
    uint32_t layer; /* the layer at fault (the output layer for the loss
                     * rules), 0 for the codes before BP_ARCH_UNITS */
} bp_arch_error;

/* The first rule arch breaks, in this order: the counts, loss and init,
 * then per layer units, activation, output-only, dropout and the running
 * parameter count, then the output layer against the loss.  No
 * allocation; {BP_ARCH_OK, 0} when every rule holds. */
bp_arch_error bp_arch_validate(const bp_arch *arch);

/* The rules bp_arch_validate applies field by field, for a caller that
 * decodes one field at a time and reports the first fault it meets.
 * Activation a of layer i of n: BP_ARCH_ACTIVATION or BP_ARCH_OUTPUT_ONLY.
 * Dropout p, as decoded (it must also stay below 1 once rounded to the
 * float stored): BP_ARCH_DROPOUT or BP_ARCH_DROPOUT_OUTPUT.  The output
 * layer against the loss: BP_ARCH_CE_SOFTMAX .. BP_ARCH_SOFTMAX_LOSS, or
 * BP_ARCH_LOSS for an unknown loss. */
bp_arch_code bp_arch_check_activation(bp_activation a, uint32_t i, uint32_t n);
bp_arch_code bp_arch_check_dropout(double p, uint32_t i, uint32_t n);
bp_arch_code bp_arch_check_output(bp_loss loss, const bp_layer_spec *out);

/* e, as bp_arch_validate or a field rule found it in arch, in the engine's
 * words: one lowercase sentence, values read from arch (which may be NULL
 * only for BP_ARCH_MISSING). */
void bp_arch_error_str(const bp_arch *arch, bp_arch_error e, char *buf, size_t size);

/* bp_arch_validate, worded by bp_arch_error_str into err: BP_OK or
 * BP_EINVAL. */
bp_status bp_arch_check(const bp_arch *arch, char *err, size_t errlen);

/* Number of parameters: sum over layers of fan_in * units + units. */
uint64_t bp_arch_param_count(const bp_arch *arch);

/* ---- models ------------------------------------------------------------ */

typedef struct bp_model bp_model;

/* Creates a model with freshly initialized weights: He-uniform or
 * Xavier-uniform drawn from xoshiro256** seeded by arch->seed, biases 0. */
bp_status bp_model_create(const bp_arch *arch, bp_model **out, char *err, size_t errlen);
bp_status bp_model_clone(const bp_model *m, bp_model **out);
void bp_model_free(bp_model *m);

uint32_t bp_model_inputs(const bp_model *m);
uint32_t bp_model_outputs(const bp_model *m);
uint32_t bp_model_n_layers(const bp_model *m);
bp_layer_spec bp_model_layer(const bp_model *m, uint32_t i);
bp_loss bp_model_loss(const bp_model *m);
uint64_t bp_model_seed(const bp_model *m);
/* The architecture the model was built from (layers point into the model). */
bp_arch bp_model_arch(const bp_model *m);

/* All parameters in one contiguous array: per layer W (units x fan_in,
 * row-major, one neuron's fan-in per row) followed by b (units). */
size_t bp_model_param_count(const bp_model *m);
const bp_real *bp_model_params(const bp_model *m);
bp_real *bp_model_params_mut(bp_model *m);

/* Input standardization (x - mean) / std, applied by predict.  std values
 * of zero are stored as 1 so that constant features map to 0. */
int bp_model_has_norm(const bp_model *m);
const bp_real *bp_model_norm_mean(const bp_model *m); /* NULL without norm */
const bp_real *bp_model_norm_std(const bp_model *m);
bp_status bp_model_set_norm(bp_model *m, const bp_real *mean, const bp_real *std);
void bp_model_clear_norm(bp_model *m);

/* Class names (copied); n == 0 clears them. */
bp_status bp_model_set_classes(bp_model *m, uint32_t n, const char *const *names);
uint32_t bp_model_n_classes(const bp_model *m);
const char *bp_model_class_name(const bp_model *m, uint32_t i);

/* ---- inference --------------------------------------------------------- */

/* Scratch needed by bp_model_predict for `rows` rows, in bp_reals. */
size_t bp_predict_scratch_size(const bp_model *m, size_t rows);

/* Outputs for `rows` rows of X (rows x inputs, row-major) into out
 * (rows x outputs), applying the stored normalization; dropout is off.
 * scratch holds bp_predict_scratch_size(m, rows) reals and is the only
 * memory written besides out, so threads may share m. */
bp_status bp_model_predict(const bp_model *m, const bp_real *X, size_t rows,
                           bp_real *out, bp_real *scratch);

/* Readies a model that will only be read from now on for one-row
 * predictions: keeps, for each layer of at most 2^20 weights, a copy of W
 * transposed (inputs x units, padded to whole vectors), so that one row
 * is a sum of whole-vector products instead of a dot product per unit
 * with a horizontal sum each.  Optional (bp_model_predict works either
 * way, with results that differ only by rounding); call before sharing
 * the model between threads.  bp_model_params_mut and bp_trainer_create
 * drop the copy.  BP_ENOMEM leaves the model unprepared and usable. */
bp_status bp_model_prepare(bp_model *m);

/* Index of the largest value of each row of out (rows x outputs); for a
 * single sigmoid output, 1 when the value is >= 0.5. */
void bp_model_argmax(const bp_model *m, const bp_real *out, size_t rows, uint32_t *classes);

/* ---- training ---------------------------------------------------------- */

typedef enum { BP_OPT_SGD = 0, BP_OPT_ADAM } bp_optimizer;
typedef enum { BP_SCHED_CONSTANT = 0, BP_SCHED_STEP, BP_SCHED_COSINE } bp_schedule;

typedef struct {
    uint32_t epoch;        /* 1-based */
    double train_loss;     /* mean over the epoch's batches */
    double train_accuracy; /* NaN for regression (mse) */
    double val_loss;       /* NaN without a validation split */
    double val_accuracy;   /* NaN without a split or for regression */
    double seconds;        /* wall time of the epoch */
} bp_epoch_metrics;

/* Called after each epoch; a nonzero return stops training (as cancel). */
typedef int (*bp_epoch_cb)(const bp_epoch_metrics *m, void *user);

typedef struct {
    uint32_t epochs;          /* >= 1 */
    uint32_t batch_size;      /* >= 1; the last batch of an epoch may be short */
    bp_optimizer optimizer;
    double learning_rate;
    double momentum;          /* sgd */
    int nesterov;             /* sgd */
    double beta1, beta2, epsilon; /* adam */
    double l2;                /* weight decay on W (not b), added to the gradient */
    bp_schedule schedule;
    uint32_t step_size;       /* step schedule: epochs between decays */
    double gamma;             /* step schedule: factor per decay */
    double validation_split;  /* 0 <= s < 1: round(s * rows) rows held out */
    int shuffle;
    uint64_t seed;            /* shuffling, validation sample, dropout masks */
    int normalize;            /* fit standardization on the training split */
    uint32_t patience;        /* early stopping; 0 = off */
    double min_delta;
    uint32_t threads;         /* threads this job may use (>= 1) */
    bp_epoch_cb on_epoch;     /* optional */
    void *user;
    const atomic_int *cancel; /* optional; checked before every batch */
} bp_train_config;

/* Fills cfg with the defaults the API documents (adam 1e-3, 10 epochs,
 * batch 32, beta1 0.9, beta2 0.999, epsilon 1e-8, one thread). */
void bp_train_config_default(bp_train_config *cfg);

/* Validates cfg against the model and the data shape. */
bp_status bp_train_config_check(const bp_train_config *cfg, size_t rows, char *err, size_t errlen);

typedef struct bp_trainer bp_trainer;

/* Prepares training of m on X (rows x inputs) and Y (rows x outputs; one-hot
 * rows for softmax, 0/1 for sigmoid).  The trainer copies the data it needs
 * (split, normalized), sizes every buffer once, and keeps a pointer to m,
 * which must outlive it.  With cfg->normalize the fitted statistics are
 * stored into m. */
bp_status bp_trainer_create(bp_model *m, const bp_train_config *cfg,
                            const bp_real *X, const bp_real *Y, size_t rows,
                            bp_trainer **out, char *err, size_t errlen);
void bp_trainer_free(bp_trainer *t);

/* Runs one epoch and reports it.  Returns BP_ENUMERIC (with a message that
 * names the epoch and suggests a lower learning rate) when the loss stops
 * being finite, BP_ECANCELLED when the cancel flag is seen. */
bp_status bp_trainer_epoch(bp_trainer *t, bp_epoch_metrics *out, char *err, size_t errlen);

/* 1 once every epoch has run or early stopping has triggered. */
int bp_trainer_done(const bp_trainer *t);
uint32_t bp_trainer_epochs_run(const bp_trainer *t);

/* Ends training: with early stopping, restores the best weights seen. */
void bp_trainer_finish(bp_trainer *t);

/* Checkpoint of everything needed to continue: epoch counter, optimizer
 * state, PRNG state, early-stopping state and the current weights. */
bp_status bp_trainer_save_state(const bp_trainer *t, void **buf, size_t *len);
bp_status bp_trainer_load_state(bp_trainer *t, const void *buf, size_t len, char *err, size_t errlen);

/* Convenience: create, run every epoch (calling cfg->on_epoch), finish. */
bp_status bp_train(bp_model *m, const bp_train_config *cfg,
                   const bp_real *X, const bp_real *Y, size_t rows,
                   char *err, size_t errlen);

/* ---- serialization ----------------------------------------------------- */

/* The "BPNN" format, version 1, documented in core/serialize.c: magic,
 * version, architecture, weights, normalization and class names, all
 * little-endian, closed by a CRC-32.  save returns a malloc()'d buffer. */
bp_status bp_model_save(const bp_model *m, void **buf, size_t *len);
/* Loads a blob; rejects truncation, corruption and sizes that disagree
 * before allocating anything proportional to them. */
bp_status bp_model_load(const void *buf, size_t len, bp_model **out, char *err, size_t errlen);

#endif
