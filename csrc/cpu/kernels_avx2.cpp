// CPU kernels for AVX2 CPUs. The instruction set is set here, not with -m flags, so that only this file uses it;
// g++ does not define the feature macros for a target pragma, so they are defined for at::vec and sleef.h.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx,avx2,fma,f16c")
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "kernels.h"
#endif
