/*
 * blas_tune.c - picks OpenBLAS kernels for CPUs newer than the library.
 *
 * Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise recent
 * Xeons (e.g. family 6 model 207) and falls back to its "Prescott" SSE3
 * kernels, which train 3-4x slower than its AVX-512 "SkylakeX" ones on the
 * same CPU.  OpenBLAS reads OPENBLAS_CORETYPE only while it is being
 * loaded, so the only way to choose is to set the variable and exec the
 * binary again, once, before any thread exists.  The choice follows the
 * instruction sets the CPU reports, so the image stays correct on any
 * x86-64; a value the operator set is always left alone.
 */
#include "blas_tune.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TUNED_ENV "BACKPROPD_BLAS_TUNED"

static const char *best_core(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void blas_tune_reexec(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv(TUNED_ENV))
        return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0)
        return; /* OpenBLAS recognised the CPU */
    const char *want = best_core();
    if (!want)
        return;
    /* TUNED_ENV stops a second attempt if the exec'd image still disagrees. */
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0 || setenv(TUNED_ENV, "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on as we were */
}

const char *blas_tune_core(void)
{
    return openblas_get_corename();
}
