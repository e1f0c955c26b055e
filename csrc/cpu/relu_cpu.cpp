// The CPU entry points: check, allocate (torch's allocator), plan, run the kernels for this CPU's capability.
#include <ATen/Version.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "../relu.h"
#include "kernels_api.h"

namespace relu_ext {
namespace cpu {

namespace DEFAULT {
extern const Kernels kernels;
}
#if defined(__x86_64__) && defined(__GNUC__)
namespace AVX2 {
extern const Kernels kernels;
}
namespace AVX512 {
extern const Kernels kernels;
}
#endif

// The copy for the instruction set torch reports on this CPU (ATEN_CPU_CAPABILITY can lower it). On AVX-512 CPUs the
// backward is the AVX2 copy's, the instruction set torch's own relu backward runs there: relu_ext's AVX-512 blend
// was up to 1.18x slower (docs/PERFORMANCE.md). The forward's AVX-512 forms are faster than AVX2's.
static const Kernels& kernels() {
  static const Kernels chosen = []() -> Kernels {
#if defined(__x86_64__) && defined(__GNUC__)
    const std::string capability = at::get_cpu_capability();
    if (capability == "AVX512") {
      return {AVX512::kernels.forward, AVX2::kernels.backward, AVX512::kernels.forward_mask,
              AVX512::kernels.backward_mask};
    }
    if (capability == "AVX2") return AVX2::kernels;
#endif
    return DEFAULT::kernels;
  }();
  return chosen;
}

static at::Tensor relu(const at::Tensor& self) {
  check_relu_input(self, "relu");
  at::Tensor out = empty_like_elementwise({&self});
  if (out.numel() != 0) kernels().forward(make_plan({&out, &self}), self.scalar_type());
  return out;
}

static at::Tensor relu_(const at::Tensor& self) {
  check_relu_input(self, "relu_");
  check_no_internal_overlap(self);
  if (self.numel() != 0) kernels().forward(make_plan({&self, &self}), self.scalar_type());
  return self;
}

static at::Tensor relu_backward(const at::Tensor& grad_output, const at::Tensor& result) {
  check_relu_backward_inputs(grad_output, result);
  at::Tensor grad_input = empty_like_elementwise({&result, &grad_output});
  if (grad_input.numel() != 0) {
    kernels().backward(make_plan({&grad_input, &grad_output, &result}), result.scalar_type());
  }
  return grad_input;
}

static std::tuple<at::Tensor, at::Tensor> relu_mask(const at::Tensor& self) {
  check_relu_mask_input(self, "relu_mask");
  at::Tensor out = empty_like_elementwise({&self});
  at::Tensor mask = empty_mask(out);
  if (out.numel() != 0) {
    kernels().forward_mask(make_plan({&out, &self}), mask.data_ptr<uint8_t>(), self.scalar_type());
  }
  return {out, mask};
}

static at::Tensor relu_mask_(const at::Tensor& self) {
  check_relu_mask_input(self, "relu_mask_");
  check_no_internal_overlap(self);
  at::Tensor mask = empty_mask(self);
  if (self.numel() != 0) {
    kernels().forward_mask(make_plan({&self, &self}), mask.data_ptr<uint8_t>(), self.scalar_type());
  }
  return mask;
}

static at::Tensor relu_mask_backward(const at::Tensor& grad_output, const at::Tensor& mask,
                                     c10::IntArrayRef result_stride) {
  check_mask_backward_inputs(grad_output, mask, static_cast<int64_t>(result_stride.size()));
  at::Tensor grad_input = empty_mask_grad(grad_output, result_stride);
  if (grad_input.numel() != 0) {
    kernels().backward_mask(make_plan({&grad_input, &grad_output}), mask.const_data_ptr<uint8_t>(),
                            grad_output.scalar_type());
  }
  return grad_input;
}

}  // namespace cpu

TORCH_LIBRARY_IMPL(relu_ext, CPU, m) {
  m.impl("relu", &cpu::relu);
  m.impl("relu_", &cpu::relu_);
  m.impl("relu_backward", &cpu::relu_backward);
  m.impl("relu_mask", &cpu::relu_mask);
  m.impl("relu_mask_", &cpu::relu_mask_);
  m.impl("relu_mask_backward", &cpu::relu_mask_backward);
}

}  // namespace relu_ext
