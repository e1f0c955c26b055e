// The CPU kernels' entry, one set per CPU capability (kernels_{default,avx2,avx512}.cpp compile kernels.h).
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>

namespace relu_ext {
struct ElementwisePlan;
namespace cpu {
struct Kernels {
  void (*forward)(const ElementwisePlan& plan, at::ScalarType dtype);   // out = relu(input)
  void (*backward)(const ElementwisePlan& plan, at::ScalarType dtype);  // out = result <= 0 ? 0 : grad_output
  // out = relu(input) and its 1-bit mask; out = the mask's bit ? grad_output : 0 (plans of out and one operand)
  void (*forward_mask)(const ElementwisePlan& plan, uint8_t* mask, at::ScalarType dtype);
  void (*backward_mask)(const ElementwisePlan& plan, const uint8_t* mask, at::ScalarType dtype);
};
}  // namespace cpu
}  // namespace relu_ext
