// Declarations shared by relu_ext's CPU and CUDA code: the dtypes, the element rules, the checks and the layout.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/DimVector.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

namespace relu_ext {

// The one dtype list: calls f(T{}) for the element type T of `dtype`. Which of these a call may use is decided by
// check_dtype (checks.cpp), which follows the installed torch.relu.
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
    case at::kUInt16: return f(uint16_t{});
    case at::kUInt32: return f(uint32_t{});
    case at::kUInt64: return f(uint64_t{});
    default: TORCH_INTERNAL_ASSERT(false, "relu_ext: dtype ", dtype, " reached a kernel unchecked");
  }
}

// The floating-point part of that list, with kernels instantiated for those types only: the mask forms exist for
// what autograd can differentiate.
template <typename F>
void dispatch_floating_dtype(at::ScalarType dtype, F&& f) {
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>) {
      f(tag);
    } else {
      TORCH_INTERNAL_ASSERT(false, "relu_ext: dtype ", dtype, " reached a mask kernel unchecked");
    }
  });
}

// The rules per element, on the storage type S, for the CPU and CUDA kernels alike. `x < 0` is false for NaN and
// -0.0, so both pass through, as in torch.relu. The backward is torch's threshold backward at 0: the gradient
// passes where !(result <= 0), so a NaN result passes it; the 1-bit mask holds exactly that test.
template <typename T>
struct ReluScalar {
  using S = T;
  static C10_HOST_DEVICE S forward(S x) {
    if constexpr (std::is_unsigned_v<S>) return x;
    else return x < S(0) ? S(0) : x;
  }
  static C10_HOST_DEVICE bool passes(S r) { return !(r <= S(0)); }
  static C10_HOST_DEVICE S backward(S g, S r) { return passes(r) ? g : S(0); }
};

// float16 and bfloat16 work on their bits read as int16, without a conversion to float (which would rewrite NaN
// payloads). Negative numbers are the patterns from INT16_MIN + 1 (INT16_MIN is -0.0) up to -inf's; the patterns
// above -inf's are negative NaNs.
template <int16_t kNegInf>
struct Bits16ReluScalar {
  using S = int16_t;
  static constexpr S kNegInfBits = kNegInf;
  static C10_HOST_DEVICE S forward(S x) { return (x <= kNegInf && x != INT16_MIN) ? S(0) : x; }
  // result <= 0: +0.0 and every pattern from -0.0 up to -inf.
  static C10_HOST_DEVICE bool passes(S r) { return !(r <= kNegInf || r == 0); }
  static C10_HOST_DEVICE S backward(S g, S r) { return passes(r) ? g : S(0); }
};
template <>
struct ReluScalar<c10::Half> : Bits16ReluScalar<static_cast<int16_t>(0xFC00)> {};
template <>
struct ReluScalar<c10::BFloat16> : Bits16ReluScalar<static_cast<int16_t>(0xFF80)> {};

// Checks shared by every entry point and the fake kernels; each raises before anything is written.
void check_relu_input(const at::Tensor& self, const char* op);
void check_relu_mask_input(const at::Tensor& self, const char* op);  // as relu's, floating-point dtypes only
void check_relu_backward_inputs(const at::Tensor& grad_output, const at::Tensor& result);
void check_no_internal_overlap(const at::Tensor& self);
// relu_mask_backward: a floating-point grad_output, a uint8 mask of ceil(numel / 8) bytes, one stride per dim.
void check_mask_backward_inputs(const at::Tensor& grad_output, const at::Tensor& mask, int64_t result_ndim);
// torch.relu accepts uint16/32/64 from torch 2.15 on (its threshold backward does not, there): relu_ext/_loader.py
// asks the installed torch at import.
void set_wide_unsigned_supported(bool forward, bool backward);

// The output of an elementwise op with the strides torch's tensor iterator gives it (layout.cpp).
at::Tensor empty_like_elementwise(std::initializer_list<const at::Tensor*> inputs);

// The 1-bit mask of relu_mask: bit i (byte i / 8, bit i % 8 from the lowest) of element i in the written tensor's
// storage order, the order in which make_plan walks it. Zeroed padding bits in the last byte.
at::Tensor empty_mask(const at::Tensor& like);
// The gradient of relu_mask_backward, with the strides torch's threshold backward gives it from a result of strides
// `result_stride` and grad_output: its storage order is the result's, so its flat index is the mask's bit index.
at::Tensor empty_mask_grad(const at::Tensor& grad_output, c10::IntArrayRef result_stride);

// One elementwise call's iteration space: dims innermost first, size-1 dims left out, neighbouring dims merged where
// every operand allows. A contiguous, transposed or channels_last tensor becomes one dim of unit stride. Operand 0
// is written; it may be operand 1 (in place).
struct ElementwisePlan {
  int ntensors = 0;  // 2: out, input; 3: out, grad_output, result
  int64_t numel = 0;
  c10::DimVector sizes;
  std::array<c10::DimVector, 3> strides;  // in elements
  std::array<void*, 3> data{};
  int ndim() const { return static_cast<int>(sizes.size()); }
};
// The operands must have the same shape (the checks ensure it).
ElementwisePlan make_plan(std::initializer_list<const at::Tensor*> operands);

// The ops from the top of the dispatcher (autograd, modes and devices apply), as torch.ops calls them (autograd.cpp).
at::Tensor call_relu(const at::Tensor& self);
void call_relu_(const at::Tensor& self);
// torch's own checks, and errors, for an in-place op that autograd records on self (a leaf that requires grad, a
// view of one, a view an in-place op may not rewrite): ReLUFunction calls it before its forward writes.
void check_inplace_allowed(const at::Tensor& self);
// relu with the mask op where autograd records it (the mask then lives in the Node), plain relu elsewhere.
at::Tensor call_relu_save_mask(const at::Tensor& self);
void call_relu_save_mask_(const at::Tensor& self);

}  // namespace relu_ext
