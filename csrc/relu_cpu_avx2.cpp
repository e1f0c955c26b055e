// CPU kernels for AVX2 CPUs. The instruction set is chosen here rather than with -m flags, so that only this file
// uses it. g++ does not define the feature macros for a target pragma in C++, so they are defined by hand for the
// headers (at::vec, sleef.h) that look at them.
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC target("avx,avx2,fma,f16c")
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "relu_cpu.h"
#endif
