// The CPU kernels' entry, one set per CPU capability (kernels_{default,avx2,avx512}.cpp compile kernels.h).
#pragma once

#include <c10/core/ScalarType.h>

namespace relu_ext {
struct ElementwisePlan;
namespace cpu {
struct Kernels {
  void (*forward)(const ElementwisePlan& plan, at::ScalarType dtype);   // out = relu(input)
  void (*backward)(const ElementwisePlan& plan, at::ScalarType dtype);  // out = result <= 0 ? 0 : grad_output
};
}  // namespace cpu
}  // namespace relu_ext
