// The CPU kernels, compiled once per CPU capability as ATen's native/cpu kernels are: the including file sets the
// instruction set and CPU_CAPABILITY, which names the inline namespace, so each copy of at::vec has its own symbols;
// relu_cpu.cpp picks the copy for the capability torch reports on this CPU.
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../relu.h"
#include "kernels_api.h"

namespace relu_ext {
namespace cpu {
inline namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// Elements per parallel task, torch's own grain: below it one thread does the call, as a fork costs more.
constexpr int64_t kGrainSize = 32768;

#if defined(CPU_CAPABILITY_AVX512)
// max(0, x) in one instruction, which returns its second operand unless the first is greater: x for NaN and -0.0.
// at::vec's compare and blend take four here, as its compares return vectors (docs/PERFORMANCE.md).
template <typename V>
V max_zero(const V& x) {
  if constexpr (std::is_same_v<typename V::value_type, float>) return V(_mm512_max_ps(_mm512_setzero_ps(), x));
  else return V(_mm512_max_pd(_mm512_setzero_pd(), x));
}
#endif

// ReluScalar (relu.h) with the same rules on vectors.
template <typename T>
struct ReluOp : ReluScalar<T> {
  using S = typename ReluScalar<T>::S;
  using V = Vectorized<S>;
  using ReluScalar<T>::forward;
  using ReluScalar<T>::backward;
  static V forward(V x) {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (std::is_floating_point_v<S>) return max_zero(x);  // one vmaxps intrinsic (max_zero above)
#endif
    return V::blendv(x, V(S(0)), x < V(S(0)));
  }
  static V blocks(V r) { return r <= V(S(0)); }  // all ones where the gradient stops
  static V backward(V g, V r) { return V::blendv(g, V(S(0)), blocks(r)); }
};

// float16 and bfloat16 on their int16 bits, as in Bits16ReluScalar.
template <typename T>
struct Bits16ReluOp : ReluScalar<T> {
  using S = int16_t;
  using V = Vectorized<S>;
  static constexpr S kNegInf = ReluScalar<T>::kNegInfBits;
  using ReluScalar<T>::forward;
  using ReluScalar<T>::backward;
  static V forward(V x) {
#if defined(CPU_CAPABILITY_AVX512)  // compares into mask registers and a masked move (docs/PERFORMANCE.md)
    const __mmask32 negative = _mm512_cmple_epi16_mask(x, _mm512_set1_epi16(kNegInf)) &
                               ~_mm512_cmpeq_epi16_mask(x, _mm512_set1_epi16(INT16_MIN));
    return V(_mm512_mask_mov_epi16(x, negative, _mm512_setzero_si512()));
#else
    return V::blendv(x, V(0), (x <= V(kNegInf)) & (x != V(INT16_MIN)));
#endif
  }
  static V blocks(V r) { return (r <= V(kNegInf)) | (r == V(0)); }
  static V backward(V g, V r) { return V::blendv(g, V(0), blocks(r)); }
};
template <>
struct ReluOp<c10::Half> : Bits16ReluOp<c10::Half> {};
template <>
struct ReluOp<c10::BFloat16> : Bits16ReluOp<c10::BFloat16> {};

// at::vec has vector forms of the signed and 8-bit types only; uint16/32/64 take the scalar loop, which the
// compiler vectorises on contiguous runs.
template <typename T>
constexpr bool kVectorized = !(std::is_unsigned_v<T> && sizeof(T) > 1);

// Calls inner(ptrs, inner_strides, n, flat_index) on each run of the innermost dim, in parallel over the flat index
// range, which each thread takes in pieces that start at a multiple of `align`.
template <int N, typename S, typename Inner>
void for_each_run(const ElementwisePlan& p, const Inner& inner, int64_t align = 1) {
  const int64_t pieces = (p.numel + align - 1) / align;
  at::parallel_for(0, pieces, std::max<int64_t>(1, kGrainSize / align), [&](int64_t piece_begin, int64_t piece_end) {
    const int64_t begin = piece_begin * align, end = std::min(p.numel, piece_end * align);
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
    for (int64_t flat = begin; flat < end;) {
      const int64_t n = std::min(end - flat, p.sizes[0] - index[0]);
      inner(ptr, inner_stride, n, flat);
      flat += n;
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
  for_each_run<2, S>(plan, [](S* const* ptr, const int64_t* stride, int64_t n, int64_t) {
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
  for_each_run<3, S>(plan, [](S* const* ptr, const int64_t* stride, int64_t n, int64_t) {
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


// The 1-bit mask (relu.h: empty_mask). Each thread takes pieces of 64 elements, so that no two write one byte; a
// piece of 64 contiguous elements is whole vectors and one 8-byte store of bits.
constexpr int64_t kMaskPiece = 64;

inline bool mask_bit(const uint8_t* mask, int64_t i) { return (mask[i >> 3] >> (i & 7)) & 1; }
inline void set_mask_bit(uint8_t* mask, int64_t i, bool bit) {
  const int shift = static_cast<int>(i & 7);
  mask[i >> 3] = static_cast<uint8_t>((mask[i >> 3] & ~(1u << shift)) | (static_cast<unsigned>(bit) << shift));
}

// Between vector lanes and one bit a lane (lane j: bit j), with the instructions for it: AVX-512 compares into and
// selects by mask registers; AVX2 gathers sign bits (movemask) and compares each lane against its own bit.
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#define RELU_EXT_MASK_VECTORS 1  // without, bits are packed and expanded one element at a time
#endif
#if defined(CPU_CAPABILITY_AVX512)
using Raw = __m512i;

// relu(x), and bit j set where lane j blocks the gradient (x <= 0, the same lanes as relu(x) <= 0: relu changes only
// lanes that block, into ones that do), from compares straight into mask registers. Floating-point types only, as
// the mask ops (checks.cpp).
template <typename T, typename V>
V relu_and_blocked(const V& x, uint64_t& blocked) {
  using S = typename V::value_type;
  if constexpr (std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>) {
    blocked = _mm512_cmple_epi16_mask(x, _mm512_set1_epi16(ReluOp<T>::kNegInf)) |
              _mm512_cmpeq_epi16_mask(x, _mm512_setzero_si512());
  } else if constexpr (std::is_same_v<S, float>) {
    blocked = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ);
  } else {
    static_assert(std::is_same_v<S, double>);
    blocked = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LE_OQ);
  }
  return ReluOp<T>::forward(x);
}

template <typename S>
Raw keep_lanes(uint64_t bits, Raw v) {  // v where the lane's bit is set, zero elsewhere
  if constexpr (sizeof(S) == 2) return _mm512_maskz_mov_epi16(static_cast<__mmask32>(bits), v);
  if constexpr (sizeof(S) == 4) return _mm512_maskz_mov_epi32(static_cast<__mmask16>(bits), v);
  if constexpr (sizeof(S) == 8) return _mm512_maskz_mov_epi64(static_cast<__mmask8>(bits), v);
}
#elif defined(CPU_CAPABILITY_AVX2)
using Raw = __m256i;

template <typename S>
uint64_t lane_bits(Raw v) {
  if constexpr (sizeof(S) == 4) return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(v)));
  if constexpr (sizeof(S) == 8) return static_cast<uint32_t>(_mm256_movemask_pd(_mm256_castsi256_pd(v)));
  if constexpr (sizeof(S) == 2) {  // two equal bits a lane from the byte gather: keep every other one
    uint64_t x = (static_cast<uint32_t>(_mm256_movemask_epi8(v)) >> 1) & 0x55555555u;
    x = (x | (x >> 1)) & 0x33333333u;
    x = (x | (x >> 2)) & 0x0F0F0F0Fu;
    x = (x | (x >> 4)) & 0x00FF00FFu;
    return (x | (x >> 8)) & 0x0000FFFFu;
  }
}

template <typename S>
Raw keep_lanes(uint64_t bits, Raw v) {
  Raw lane_bit, spread;  // each lane's own bit, and the bits copied so that each lane holds its own
  if constexpr (sizeof(S) == 2) {
    spread = _mm256_set1_epi16(static_cast<int16_t>(bits));
    lane_bit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, INT16_MIN);
    return _mm256_and_si256(v, _mm256_cmpeq_epi16(_mm256_and_si256(spread, lane_bit), lane_bit));
  }
  if constexpr (sizeof(S) == 4) {
    spread = _mm256_set1_epi32(static_cast<int>(bits));
    lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_and_si256(v, _mm256_cmpeq_epi32(_mm256_and_si256(spread, lane_bit), lane_bit));
  }
  if constexpr (sizeof(S) == 8) {
    spread = _mm256_set1_epi64x(static_cast<int64_t>(bits));
    lane_bit = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_and_si256(v, _mm256_cmpeq_epi64(_mm256_and_si256(spread, lane_bit), lane_bit));
  }
}
#endif

#ifdef RELU_EXT_MASK_VECTORS
// A vector's register as integer lanes, and back (no instruction: a cast between register types).
template <typename V>
Raw raw(const V& v) {
  using S = typename V::value_type;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<S, float>) return _mm512_castps_si512(v);
  else if constexpr (std::is_same_v<S, double>) return _mm512_castpd_si512(v);
#else
  if constexpr (std::is_same_v<S, float>) return _mm256_castps_si256(v);
  else if constexpr (std::is_same_v<S, double>) return _mm256_castpd_si256(v);
#endif
  else return v;
}
template <typename V>
V from_raw(Raw r) {
  using S = typename V::value_type;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<S, float>) return V(_mm512_castsi512_ps(r));
  else if constexpr (std::is_same_v<S, double>) return V(_mm512_castsi512_pd(r));
#else
  if constexpr (std::is_same_v<S, float>) return V(_mm256_castsi256_ps(r));
  else if constexpr (std::is_same_v<S, double>) return V(_mm256_castsi256_pd(r));
#endif
  else return V(r);
}
#endif

#if defined(CPU_CAPABILITY_AVX2)
template <typename T, typename V>
V relu_and_blocked(const V& x, uint64_t& blocked) {  // as the AVX-512 one, with at::vec's compare and a movemask
  blocked = lane_bits<typename V::value_type>(raw(ReluOp<T>::blocks(x)));
  return ReluOp<T>::forward(x);
}
#endif

// out = relu(in), and the mask of !(out <= 0), bit by flat index: whole 64-element pieces of contiguous runs in
// vectors, every other element one at a time.
template <typename T>
void relu_mask_forward_kernel(const ElementwisePlan& plan, uint8_t* mask) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  if (plan.numel % 8 != 0) mask[plan.numel / 8] = 0;  // the padding bits, which no element sets
  for_each_run<2, S>(plan, [mask](S* const* ptr, const int64_t* stride, int64_t n, int64_t index) {
    S* out = ptr[0];
    const S* in = ptr[1];
    const auto one = [&](int64_t i) {
      const S r = Op::forward(in[i * stride[1]]);
      out[i * stride[0]] = r;
      set_mask_bit(mask, index + i, Op::passes(r));
    };
    int64_t i = 0;
#ifdef RELU_EXT_MASK_VECTORS
    if (stride[0] == 1 && stride[1] == 1) {
      using V = typename Op::V;
      for (; i < n && (index + i) % kMaskPiece != 0; ++i) one(i);
      for (; i + kMaskPiece <= n; i += kMaskPiece) {
        uint64_t bits = 0;
        for (int j = 0; j < kMaskPiece; j += V::size()) {
          uint64_t blocked;
          relu_and_blocked<T>(V::loadu(in + i + j), blocked).store(out + i + j);
          bits |= blocked << j;
        }
        bits = ~bits;
        std::memcpy(mask + (index + i) / 8, &bits, sizeof bits);
      }
    }
#endif
    for (; i < n; ++i) one(i);
  }, kMaskPiece);
}

// out = grad where the mask's bit is set, else 0; the plan's flat index is the bit index.
template <typename T>
void relu_mask_backward_kernel(const ElementwisePlan& plan, const uint8_t* mask) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  for_each_run<2, S>(plan, [mask](S* const* ptr, const int64_t* stride, int64_t n, int64_t index) {
    S* out = ptr[0];
    const S* grad = ptr[1];
    const auto one = [&](int64_t i) { out[i * stride[0]] = mask_bit(mask, index + i) ? grad[i * stride[1]] : S(0); };
    int64_t i = 0;
#ifdef RELU_EXT_MASK_VECTORS
    if (stride[0] == 1 && stride[1] == 1) {
      using V = typename Op::V;
      for (; i < n && (index + i) % kMaskPiece != 0; ++i) one(i);
      for (; i + kMaskPiece <= n; i += kMaskPiece) {
        uint64_t bits;
        std::memcpy(&bits, mask + (index + i) / 8, sizeof bits);
        for (int j = 0; j < kMaskPiece; j += V::size()) {
          from_raw<V>(keep_lanes<S>(bits >> j, raw(V::loadu(grad + i + j)))).store(out + i + j);
        }
      }
    }
#endif
    for (; i < n; ++i) one(i);
  }, kMaskPiece);
}

void forward(const ElementwisePlan& plan, at::ScalarType dtype) {
  dispatch_dtype(dtype, [&](auto tag) { relu_forward_kernel<decltype(tag)>(plan); });
}

#if !defined(CPU_CAPABILITY_AVX512)  // AVX-512 CPUs run the AVX2 copy's backward (relu_cpu.cpp)
void backward(const ElementwisePlan& plan, at::ScalarType dtype) {
  dispatch_dtype(dtype, [&](auto tag) { relu_backward_kernel<decltype(tag)>(plan); });
}
#endif

void forward_mask(const ElementwisePlan& plan, uint8_t* mask, at::ScalarType dtype) {
  dispatch_floating_dtype(dtype, [&](auto tag) { relu_mask_forward_kernel<decltype(tag)>(plan, mask); });
}

void backward_mask(const ElementwisePlan& plan, const uint8_t* mask, at::ScalarType dtype) {
  dispatch_floating_dtype(dtype, [&](auto tag) { relu_mask_backward_kernel<decltype(tag)>(plan, mask); });
}

extern const Kernels kernels;
#if defined(CPU_CAPABILITY_AVX512)
const Kernels kernels = {&forward, nullptr, &forward_mask, &backward_mask};
#else
const Kernels kernels = {&forward, &backward, &forward_mask, &backward_mask};
#endif

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace relu_ext
