/* libcufft.so.11 shim: forwards the few cuFFT entry points that the CUDA 12 wheels of ASTRA
 * and cuFINUFFT import (versioned @libcufft.so.11) to the CUDA 13 libcufft.so.12 that the
 * GPU machine's image carries. The cuFFT C API of these calls is unchanged between the two.
 * Build: gcc -shared -fPIC -O2 -Wl,--version-script=cufft_shim.map -Wl,-soname,libcufft.so.11
 *        -o libcufft.so.11 cufft_shim.c -ldl */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#define SYMS X(cufftDestroy) X(cufftExecC2C) X(cufftExecZ2Z) X(cufftPlanMany) \
             X(cufftSetStream) X(cufftExecR2C) X(cufftExecC2R) X(cufftPlan1d)

#define X(n) __attribute__((used, visibility("hidden"))) void *p_##n;
SYMS
#undef X

__attribute__((constructor)) static void shim_init(void) {
    const char *name = getenv("CUFFT_SHIM_TARGET");
    void *h = dlopen(name ? name : "libcufft.so.12", RTLD_NOW | RTLD_GLOBAL);
    if (!h) { fprintf(stderr, "cufft shim: %s\n", dlerror()); return; }
#define X(n) p_##n = dlsym(h, #n);
    SYMS
#undef X
}

#define X(n) __asm__(".globl " #n "\n.type " #n ",@function\n" #n ":\n jmp *p_" #n "(%rip)\n");
SYMS
#undef X
