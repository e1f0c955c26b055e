// Declarations shared by the CPU (relu.cpp, relu_cpu_*.cpp) and CUDA (relu_cuda.cu) parts of relu_ext.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/DimVector.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace relu_ext {

// The iteration space of one elementwise call, after the layout work is done: dims ordered innermost first,
// size-1 dims dropped, neighbouring dims merged where every operand allows it. A contiguous, transposed or
// channels_last tensor becomes one dim of unit stride. Operand 0 is written; it may alias operand 1 (in-place).
constexpr int kMaxDims = 25;
// sizes and strides are left uninitialised (800 bytes to clear on every call): only sizes[d] and strides[k][d] for
// d < ndim and k < ntensors are set and read.
struct ElementwisePlan {
  int ntensors = 0;  // 2: out, input; 3: out, grad_output, result
  int ndim = 0;      // >= 1
  int64_t numel = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[3][kMaxDims];  // in elements
  void* data[3] = {nullptr, nullptr, nullptr};
  bool stream_stores = false;  // write operand 0 with non-temporal stores (relu.cpp: only past the last-level cache)
  bool interleave = false;     // in place, past the cache but fitting in it: two halves walked in turn (relu_cpu.h)
};

// Plan for `operands` (the first is written). They must have the same shape; the caller checks.
ElementwisePlan make_plan(std::initializer_list<const at::Tensor*> operands);

// Output of an elementwise op with the layout ATen's tensor iterator gives it: the inputs' strides when they share
// a dense layout, else dense in the inputs' order of dims (so torch.relu and relu_ext.relu agree on strides).
at::Tensor empty_like_elementwise(std::initializer_list<const at::Tensor*> inputs);
c10::DimVector elementwise_strides(std::initializer_list<const at::Tensor*> inputs);  // that output's strides

// The ops through the dispatcher from the top (autograd, modes and device all apply), as torch.ops calls them;
// defined in relu_autograd.cpp beside the handles its kernels redispatch with.
at::Tensor call_relu(const at::Tensor& self);
void call_relu_(const at::Tensor& self);

// Argument checks, shared by the CPU and CUDA entry points; each raises before anything is written.
void check_relu_input(const at::Tensor& self, const char* op);
void check_no_internal_overlap(const at::Tensor& self);
// in_place: for relu_backward_, which writes grad_output; adds torch's overlap checks for in-place ops.
void check_relu_backward_inputs(const at::Tensor& grad_output, const at::Tensor& result, bool in_place = false);

// The one dtype dispatch: calls f(T{}) for the storage type T of `dtype`.
template <typename F>
void dispatch_dtype(at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kFloat: return f(float{});
    case at::kDouble: return f(double{});
    case at::kHalf: return f(c10::Half{});
    case at::kBFloat16: return f(c10::BFloat16{});
    case at::kChar: return f(int8_t{});
    case at::kByte: return f(uint8_t{});
    case at::kShort: return f(int16_t{});
    case at::kInt: return f(int32_t{});
    case at::kLong: return f(int64_t{});
    default: TORCH_INTERNAL_ASSERT(false, "relu_ext: dtype ", dtype, " reached a kernel unchecked");
  }
}

// The element-wise rules, on the storage type S, for the CPU and CUDA kernels alike. Ordinary types compare as
// numbers: `x < 0` is false for NaN and -0.0, so both pass through unchanged, as in torch.relu. The backward is
// torch's threshold backward with threshold 0: 0 where result <= 0, so NaN results pass the gradient.
template <typename T>
struct ReluScalar {
  using S = T;
  static C10_HOST_DEVICE S forward(S x) {
    if constexpr (std::is_unsigned_v<S>) return x;
    else return x < S(0) ? S(0) : x;
  }
  static C10_HOST_DEVICE S backward(S g, S r) {
    if constexpr (std::is_unsigned_v<S>) return r == S(0) ? S(0) : g;
    else return r <= S(0) ? S(0) : g;
  }
};

// float16 and bfloat16 work on their bit patterns read as int16, with no conversion to float (which costs work and
// rewrites NaN payloads). The negative numbers, -inf included, are the patterns from INT16_MIN + 1 up to the pattern
// of -inf; INT16_MIN is -0.0, and the patterns above -inf are negative NaNs.
template <int16_t kNegInf>
struct Bits16ReluScalar {
  using S = int16_t;
  static constexpr S kNegInfBits = kNegInf;
  static C10_HOST_DEVICE S forward(S x) { return (x <= kNegInf && x != INT16_MIN) ? S(0) : x; }
  // result <= 0 holds for +0.0 and for every pattern from -0.0 up to -inf.
  static C10_HOST_DEVICE S backward(S g, S r) { return (r <= kNegInf || r == 0) ? S(0) : g; }
};
template <>
struct ReluScalar<c10::Half> : Bits16ReluScalar<static_cast<int16_t>(0xFC00)> {};
template <>
struct ReluScalar<c10::BFloat16> : Bits16ReluScalar<static_cast<int16_t>(0xFF80)> {};

namespace cpu {
// CPU calls that move more than `bytes` (reads + writes) take the past-the-cache paths: non-temporal stores out of
// place, interleaved halves in place (for tensors no bigger than the cache). -1 (the default) is the last-level cache
// size. For tests, which force those paths on small tensors with 0.
void set_stream_min_bytes(int64_t bytes);

// One set per CPU capability (relu_cpu.h compiled by relu_cpu_{default,avx2,avx512}.cpp).
struct Kernels {
  void (*forward)(const ElementwisePlan& plan, at::ScalarType dtype);   // out = relu(input)
  void (*backward)(const ElementwisePlan& plan, at::ScalarType dtype);  // out = result <= 0 ? 0 : grad_output
};
}  // namespace cpu

// relu's backward on the CPU writes the gradient over the incoming one (when nothing else can see it) only for
// gradients of at least `bytes`; -1 restores the default (2 MiB, csrc/relu_autograd.cpp). For tests, with 0.
void set_overwrite_min_bytes(int64_t bytes);

}  // namespace relu_ext
