// CPU kernels for AVX-512 CPUs (F, BW, VL, DQ: torch's AVX512 level). The instruction set is set here, not with -m
// flags, so that only this file uses it; g++ does not define the feature macros for a target pragma, so they are
// defined for at::vec and sleef.h.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx,avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#define __AVX512F__ 1
#define __AVX512BW__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include "kernels.h"
#endif
