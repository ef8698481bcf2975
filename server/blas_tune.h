/*
 * blas_tune.h - lets OpenBLAS use the kernels the CPU really has when the
 * library is older than the CPU.
 */
#ifndef SRV_BLAS_TUNE_H
#define SRV_BLAS_TUNE_H

/* When OpenBLAS fell back to its generic kernels on a CPU it does not
 * recognise, and the operator has not set OPENBLAS_CORETYPE, re-executes
 * the daemon once with the best core type the CPU supports.  Returns only
 * when nothing needs doing or the re-exec failed (then the daemon simply
 * runs on the generic kernels). */
void blas_tune_reexec(char **argv);

/* The OpenBLAS core in use, e.g. "SkylakeX" (for the start-up log). */
const char *blas_tune_core(void);

#endif
