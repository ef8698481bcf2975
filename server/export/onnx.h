/*
 * onnx.h - a trained model as an ONNX file: a ModelProto (IR version 8,
 * default-domain opset 13) that computes what bp_model_predict computes.
 * The graph, the tensors' names and the metadata are described in onnx.c;
 * the encoding is protobuf-c's, from Debian's onnx.proto.  No I/O: the
 * caller gets a buffer.
 */
#ifndef SRV_ONNX_H
#define SRV_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "bp.h"
#include "err.h"

#define ONNX_IR_VERSION 8
#define ONNX_OPSET 13
/* protobuf's own ceiling: readers refuse a message of 2 GiB or more, so a
 * model that would encode larger is refused (422) rather than sent broken. */
#define ONNX_MAX_BYTES ((size_t)INT32_MAX)

typedef struct {
    const char *model; /* the model's name: the graph's name and metadata "model" */
    uint32_t version;  /* the version exported: model_version and metadata "version" */
} onnx_export_info;

/* Encodes m into *buf (malloc()'d, *len bytes; the caller frees it).  m is
 * only read, so a cached, shared model may be exported while it serves.
 * 0, or -1 with ERR_INTERNAL (out of memory) or ERR_UNPROCESSABLE (past
 * ONNX_MAX_BYTES). */
int onnx_export_model(const bp_model *m, const onnx_export_info *info, void **buf, size_t *len,
                      srv_err *e);

#endif
