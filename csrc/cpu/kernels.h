// The CPU kernels, compiled once per CPU capability as ATen's native/cpu kernels are: the including file sets the
// instruction set and CPU_CAPABILITY, which names the inline namespace, so each copy of at::vec has its own symbols;
// relu_cpu.cpp picks the copy torch itself uses on this CPU.
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "../relu.h"
#include "kernels_api.h"

namespace relu_ext {
namespace cpu {
inline namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// Elements per parallel task, torch's own grain: below it one thread does the call, as a fork costs more.
constexpr int64_t kGrainSize = 32768;

// ReluScalar (relu.h) with the same rules on vectors.
template <typename T>
struct ReluOp : ReluScalar<T> {
  using S = typename ReluScalar<T>::S;
  using V = Vectorized<S>;
  using ReluScalar<T>::forward;
  using ReluScalar<T>::backward;
  static V forward(V x) { return V::blendv(x, V(S(0)), x < V(S(0))); }
  static V backward(V g, V r) { return V::blendv(g, V(S(0)), r <= V(S(0))); }
};

// float16 and bfloat16 on their int16 bits, as in Bits16ReluScalar.
template <typename T>
struct Bits16ReluOp : ReluScalar<T> {
  using S = int16_t;
  using V = Vectorized<S>;
  static constexpr S kNegInf = ReluScalar<T>::kNegInfBits;
  using ReluScalar<T>::forward;
  using ReluScalar<T>::backward;
  static V forward(V x) { return V::blendv(x, V(0), (x <= V(kNegInf)) & (x != V(INT16_MIN))); }
  static V backward(V g, V r) { return V::blendv(g, V(0), (r <= V(kNegInf)) | (r == V(0))); }
};
template <>
struct ReluOp<c10::Half> : Bits16ReluOp<c10::Half> {};
template <>
struct ReluOp<c10::BFloat16> : Bits16ReluOp<c10::BFloat16> {};

// at::vec has vector forms of the signed and 8-bit types only; uint16/32/64 take the scalar loop, which the
// compiler vectorises on contiguous runs.
template <typename T>
constexpr bool kVectorized = !(std::is_unsigned_v<T> && sizeof(T) > 1);

// Calls inner(ptrs, inner_strides, n) on each run of the innermost dim, in parallel over the flat index range.
template <int N, typename S, typename Inner>
void for_each_run(const ElementwisePlan& p, const Inner& inner) {
  at::parallel_for(0, p.numel, kGrainSize, [&](int64_t begin, int64_t end) {
    const int ndim = p.ndim();
    c10::DimVector index(ndim);
    S* ptr[N];
    int64_t inner_stride[N];
    for (int k = 0; k < N; ++k) {
      ptr[k] = static_cast<S*>(p.data[k]);
      inner_stride[k] = p.strides[k][0];
    }
    int64_t rest = begin;
    for (int d = 0; d < ndim; ++d) {
      index[d] = rest % p.sizes[d];
      rest /= p.sizes[d];
      for (int k = 0; k < N; ++k) ptr[k] += index[d] * p.strides[k][d];
    }
    for (int64_t todo = end - begin; todo > 0;) {
      const int64_t n = std::min(todo, p.sizes[0] - index[0]);
      inner(ptr, inner_stride, n);
      todo -= n;
      for (int k = 0; k < N; ++k) ptr[k] += n * p.strides[k][0];
      index[0] += n;
      for (int d = 0; d + 1 < ndim && index[d] == p.sizes[d]; ++d) {  // carry into the next dim
        for (int k = 0; k < N; ++k) ptr[k] += p.strides[k][d + 1] - p.sizes[d] * p.strides[k][d];
        index[d] = 0;
        ++index[d + 1];
      }
    }
  });
}

// out = relu(in): a vector body of two vectors a step, then a scalar tail; strided runs element by element.
template <typename T>
void relu_forward_kernel(const ElementwisePlan& plan) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  for_each_run<2, S>(plan, [](S* const* ptr, const int64_t* stride, int64_t n) {
    S* out = ptr[0];
    const S* in = ptr[1];
    if (stride[0] == 1 && stride[1] == 1) {
      int64_t i = 0;
      if constexpr (kVectorized<T>) {
        using V = typename Op::V;
        constexpr int64_t W = V::size();
        for (; i + 2 * W <= n; i += 2 * W) {
          const V a = V::loadu(in + i);
          const V b = V::loadu(in + i + W);
          Op::forward(a).store(out + i);
          Op::forward(b).store(out + i + W);
        }
      }
      for (; i < n; ++i) out[i] = Op::forward(in[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * stride[0]] = Op::forward(in[i * stride[1]]);
    }
  });
}

// out = result <= 0 ? 0 : grad_output, in the same shape as the forward.
template <typename T>
void relu_backward_kernel(const ElementwisePlan& plan) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  for_each_run<3, S>(plan, [](S* const* ptr, const int64_t* stride, int64_t n) {
    S* out = ptr[0];
    const S* grad = ptr[1];
    const S* result = ptr[2];
    if (stride[0] == 1 && stride[1] == 1 && stride[2] == 1) {
      int64_t i = 0;
      if constexpr (kVectorized<T>) {
        using V = typename Op::V;
        constexpr int64_t W = V::size();
        for (; i + 2 * W <= n; i += 2 * W) {
          const V g0 = V::loadu(grad + i), r0 = V::loadu(result + i);
          const V g1 = V::loadu(grad + i + W), r1 = V::loadu(result + i + W);
          Op::backward(g0, r0).store(out + i);
          Op::backward(g1, r1).store(out + i + W);
        }
      }
      for (; i < n; ++i) out[i] = Op::backward(grad[i], result[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * stride[0]] = Op::backward(grad[i * stride[1]], result[i * stride[2]]);
    }
  });
}

void forward(const ElementwisePlan& plan, at::ScalarType dtype) {
  dispatch_dtype(dtype, [&](auto tag) { relu_forward_kernel<decltype(tag)>(plan); });
}

void backward(const ElementwisePlan& plan, at::ScalarType dtype) {
  dispatch_dtype(dtype, [&](auto tag) { relu_backward_kernel<decltype(tag)>(plan); });
}

extern const Kernels kernels;
const Kernels kernels = {&forward, &backward};

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace relu_ext
