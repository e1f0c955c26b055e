// The CPU kernels. Compiled once per CPU capability, as ATen's native/cpu kernels are: the including file sets the
// instruction set and CPU_CAPABILITY, which names the inline namespace, so each copy of at::vec has its own symbols
// and relu.cpp picks the copy that matches the CPU at run time.
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "relu.h"

namespace relu_ext {
namespace cpu {
inline namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// Elements per parallel task: below this one thread does the whole call, as an OpenMP fork costs more than it saves.
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

// float and double in one or two instructions. max(0, x) returns its second operand, x, when x is NaN and when both
// are zeros, so NaN and -0.0 pass through. The backward keeps g where !(r <= 0): r > 0, or r is NaN.
#if defined(CPU_CAPABILITY_AVX512)
template <>
inline Vectorized<float> ReluOp<float>::forward(Vectorized<float> x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
template <>
inline Vectorized<float> ReluOp<float>::backward(Vectorized<float> g, Vectorized<float> r) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, _mm512_setzero_ps(), _CMP_NLE_UQ), g);
}
template <>
inline Vectorized<double> ReluOp<double>::forward(Vectorized<double> x) {
  return _mm512_max_pd(_mm512_setzero_pd(), x);
}
template <>
inline Vectorized<double> ReluOp<double>::backward(Vectorized<double> g, Vectorized<double> r) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(r, _mm512_setzero_pd(), _CMP_NLE_UQ), g);
}
#elif defined(CPU_CAPABILITY_AVX2)
template <>
inline Vectorized<float> ReluOp<float>::forward(Vectorized<float> x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }
template <>
inline Vectorized<float> ReluOp<float>::backward(Vectorized<float> g, Vectorized<float> r) {
  return _mm256_and_ps(_mm256_cmp_ps(r, _mm256_setzero_ps(), _CMP_NLE_UQ), g);
}
template <>
inline Vectorized<double> ReluOp<double>::forward(Vectorized<double> x) {
  return _mm256_max_pd(_mm256_setzero_pd(), x);
}
template <>
inline Vectorized<double> ReluOp<double>::backward(Vectorized<double> g, Vectorized<double> r) {
  return _mm256_and_pd(_mm256_cmp_pd(r, _mm256_setzero_pd(), _CMP_NLE_UQ), g);
}
#endif

// The contiguous loops' loads. The AVX-512 build loads a float or double vector as two 256-bit halves. Measured here
// (Zen 4 VM, 2 threads, one process, whole and split loads taking turns with torch, 8-10 rounds; speed-up of split
// over whole, 2 or 3 runs where given as a range): float32 forward 2^19 0.99-1.00, 2^20 1.00-1.02, 2^21 1.05,
// 2^22 1.03-1.08, 2^23 1.09; in place 2^20 1.04-1.05, 2^21 1.06, 2^22 1.04-1.06; backward 2^19 0.95-1.02, 2^20
// 1.00-1.03, 2^21 1.01-1.04; float64 backward and in place 1.04-1.07 from 2^19 to 2^21, forward 0.98-1.04; every
// other size 2^12 to 2^24 within 2% either way. Splitting the stores as well lost up to 6% in place. 16-bit types
// measured even (0.98-1.03) and load whole. torch's own kernels for these ops run their AVX2 code on this CPU, so
// 256-bit loads. No hardware counters here to say why; the compiler keeps the halves (vinsertf32x8 from memory).
template <typename S>
inline Vectorized<S> load(const S* p) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<S, float>) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps(p + 8), 1);
  } else if constexpr (std::is_same_v<S, double>) {
    return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(p)), _mm256_loadu_pd(p + 4), 1);
  }
#endif
  return Vectorized<S>::loadu(p);
}

// A vector store that bypasses the caches (non-temporal), for outputs too big to stay cached. `p` must be aligned to
// the vector's size; the generic build has no such store and stores normally. Callers end with stream_fence().
template <typename S>
inline void store_stream(S* p, const Vectorized<S>& v) {
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<S, float>) _mm512_stream_ps(p, v);
  else if constexpr (std::is_same_v<S, double>) _mm512_stream_pd(p, v);
  else _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v);
#elif defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<S, float>) _mm256_stream_ps(p, v);
  else if constexpr (std::is_same_v<S, double>) _mm256_stream_pd(p, v);
  else _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v);
#else
  v.store(p);
#endif
}

template <typename S>
inline void store(S* p, const Vectorized<S>& v, bool stream) {
  if (stream) {
    store_stream(p, v);
  } else {
    v.store(p);
  }
}

// Non-temporal stores are weakly ordered: fence them before the thread reports its part done.
inline void stream_fence() {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  _mm_sfence();
#endif
}

// Elements before `out + i` is aligned to a whole vector, so that the streaming loop's stores are aligned.
template <typename S, int64_t W>
int64_t elements_to_alignment(const S* out, int64_t n) {
  const auto misalignment = reinterpret_cast<uintptr_t>(out) % (W * sizeof(S));
  if (misalignment % sizeof(S) != 0) return n;  // not even element-aligned: no streaming
  return std::min<int64_t>(n, misalignment == 0 ? 0 : (W * sizeof(S) - misalignment) / sizeof(S));
}

template <typename T, int16_t kNegInf>
struct Bits16ReluOp : ReluScalar<T> {
  using S = int16_t;
  using V = Vectorized<S>;
  using ReluScalar<T>::forward;
  using ReluScalar<T>::backward;
#if defined(CPU_CAPABILITY_AVX512)
  // One compare per rule into a mask register, then a zeroing move.
  static V forward(V x) {
    const __mmask32 negative = _mm512_cmple_epi16_mask(x, _mm512_set1_epi16(kNegInf)) &
                               _mm512_cmpneq_epi16_mask(x, _mm512_set1_epi16(INT16_MIN));
    return _mm512_maskz_mov_epi16(~negative, x);
  }
  static V backward(V g, V r) {
    const __mmask32 not_positive = _mm512_cmple_epi16_mask(r, _mm512_set1_epi16(kNegInf)) |
                                   _mm512_cmpeq_epi16_mask(r, _mm512_setzero_si512());
    return _mm512_maskz_mov_epi16(~not_positive, g);
  }
#else
  static V forward(V x) { return V::blendv(x, V(0), (x <= V(kNegInf)) & (x != V(INT16_MIN))); }
  static V backward(V g, V r) { return V::blendv(g, V(0), (r <= V(kNegInf)) | (r == V(0))); }
#endif
};
template <>
struct ReluOp<c10::Half> : Bits16ReluOp<c10::Half, ReluScalar<c10::Half>::kNegInfBits> {};
template <>
struct ReluOp<c10::BFloat16> : Bits16ReluOp<c10::BFloat16, ReluScalar<c10::BFloat16>::kNegInfBits> {};

// In place, where a call moves more bytes than the last-level cache holds but the tensor alone still fits in it
// (plan.interleave, relu.cpp), each thread walks its part as two halves taken kInterleaveBytes at a time, in turn,
// rather than front to back: the hardware prefetcher follows a stream within a 4 KiB page and starts over at the
// next, and two streams are meant to keep two pages' loads in flight. Measured here (float32 in place, 2 threads,
// one process, relu_ext with and without it and torch.relu_ rotated call by call, median of per-call ratios
// torch/relu_ext; 32 MiB L3): at 2^22.5 and 2^23 elements (24 and 32 MB) it beat the sequential walk in 7 of 13
// runs (up to 1.29 against 1.04-1.10), tied in 3 and lost in 3 (0.77-0.95 against 1.00-1.02). For bigger tensors,
// 2^24 to 2^26, it won 2 of 16 runs by 2% and lost up to 11%, while the sequential walk was 1.00-1.04 in all 16:
// those take the sequential walk. At 2^21 and 2^22 (inside the cache) it lost too (0.88-0.99). Out of place it lost
// at every size from 2^20 to 2^26 (0.82-0.97x): there the output's fresh pages are faulted in as they are written,
// and the sequential order suits that. Four streams, or 2 KiB and 8 KiB turns, were no better than two of 4 KiB.
constexpr int64_t kInterleaveBytes = 4096;

// Two other walks were measured and dropped (float32, 2 threads, one process, relu_ext and torch taking turns by the
// block, per-block ratio torch/relu_ext, two processes each, 2^19 to 2^22 elements): each thread's part walked from
// its end, 4 KiB at a time (forward 0.69-0.97 where front to back gave 1.02-1.40; backward 0.88-1.06 against
// 1.01-1.42), and the direction flipped every call, so that a call starts where the last one ended, in the cache
// (forward 0.92-1.30, backward 0.98-1.23). Software prefetches in the contiguous loops (8 to 32 lines ahead on each
// input, with or without a prefetchw of the output) lost too: backward at 2^19 0.85-1.01 against 0.97-1.02,
// forward at 2^20 0.82-1.01 against 1.00-1.01; the hardware prefetchers already keep up. In place past the cache
// (2^24 and 2^25 float32, memory-bound, two processes) prefetching 512 bytes ahead was 6% and 1% faster, 9% and 0%
// slower than without; 1-4 KiB ahead lost 0-20%.
// In place past the cache, more orders and stores were measured against this sequential walk and dropped (float32
// 2^24, one process, each taking turns with torch.relu_ on one tensor, median over 10-16 rounds of torch/relu_ext;
// the sequential walk 0.94, 1.03 and 1.10 in the same runs): the threads taking blocks in turn (thread t the blocks
// t, t + 2, ...) of 16 KiB 0.60, 64 KiB 0.88, 1 MiB 1.04 and 1.05 (0.88 against 0.99 at 2^26); one thread 0.83;
// each thread's part walked from its end 4 KiB at a time 0.60; each 64 KiB written back (clwb) or flushed
// (clflushopt) once done 0.58 and 0.63; non-temporal stores 0.81. Both sides move the same bytes at the same rate.

// Runs inner(ptrs, unit strides, n) over [begin, end) of a one-dim plan as two interleaved halves (see above).
// Turns start on a grid of kInterleaveBytes counted from the tensors' start, so that they keep its alignment.
template <int N, typename S, typename Inner>
void interleaved_halves(const ElementwisePlan& p, int64_t begin, int64_t end, const Inner& inner) {
  constexpr int64_t turn = kInterleaveBytes / sizeof(S);
  int64_t ones[N];
  std::fill(ones, ones + N, int64_t(1));
  auto run = [&](int64_t at, int64_t n) {
    S* ptr[N];
    for (int k = 0; k < N; ++k) ptr[k] = static_cast<S*>(p.data[k]) + at;
    inner(ptr, ones, n);
  };
  const int64_t first = std::min(end, (begin + turn - 1) / turn * turn);
  const int64_t turns_per_half = (end - first) / turn / 2;
  if (turns_per_half < 2) return run(begin, end - begin);
  if (first > begin) run(begin, first - begin);
  const int64_t second = first + turns_per_half * turn;
  for (int64_t t = 0; t < turns_per_half; ++t) {
    run(first + t * turn, turn);
    run(second + t * turn, turn);
  }
  const int64_t rest = second + turns_per_half * turn;
  if (end > rest) run(rest, end - rest);
}

// Runs inner(ptrs, inner_strides, n) over every run of the innermost dim, in parallel over the flat index range.
template <int N, typename S, typename Inner>
void for_each_run(const ElementwisePlan& p, const Inner& inner) {
  if (p.interleave && p.ndim == 1) {
    at::parallel_for(0, p.numel, kGrainSize,
                     [&](int64_t begin, int64_t end) { interleaved_halves<N, S>(p, begin, end, inner); });
    return;
  }
  at::parallel_for(0, p.numel, kGrainSize, [&](int64_t begin, int64_t end) {
    int64_t index[kMaxDims];
    S* ptr[N];
    int64_t inner_stride[N];
    for (int k = 0; k < N; ++k) {
      ptr[k] = static_cast<S*>(p.data[k]);
      inner_stride[k] = p.strides[k][0];
    }
    int64_t rest = begin;
    for (int d = 0; d < p.ndim; ++d) {
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
      for (int d = 0; d + 1 < p.ndim && index[d] == p.sizes[d]; ++d) {
        for (int k = 0; k < N; ++k) ptr[k] += p.strides[k][d + 1] - p.sizes[d] * p.strides[k][d];
        index[d] = 0;
        ++index[d + 1];
      }
    }
  });
}

template <typename T>
void relu_forward_kernel(const ElementwisePlan& plan) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  using V = typename Op::V;
  constexpr int64_t W = V::size();
  for_each_run<2, S>(plan, [stream_flag = plan.stream_stores](S* const* ptr, const int64_t* stride, int64_t n) {
    const bool stream = stream_flag;  // a local: the stores cannot alias it, so the loop below splits in two
    S* out = ptr[0];
    const S* in = ptr[1];
    if (stride[0] == 1 && stride[1] == 1) {
      int64_t i = stream ? elements_to_alignment<S, W>(out, n) : 0;
      for (int64_t j = 0; j < i; ++j) out[j] = Op::forward(in[j]);
      for (; i + 2 * W <= n; i += 2 * W) {
        const V a = load(in + i);
        const V b = load(in + i + W);
        store(out + i, Op::forward(a), stream);
        store(out + i + W, Op::forward(b), stream);
      }
      for (; i < n; ++i) out[i] = Op::forward(in[i]);
      if (stream) stream_fence();
    } else {
      for (int64_t i = 0; i < n; ++i) out[i * stride[0]] = Op::forward(in[i * stride[1]]);
    }
  });
}

template <typename T>
void relu_backward_kernel(const ElementwisePlan& plan) {
  using Op = ReluOp<T>;
  using S = typename Op::S;
  using V = typename Op::V;
  constexpr int64_t W = V::size();
  for_each_run<3, S>(plan, [stream_flag = plan.stream_stores](S* const* ptr, const int64_t* stride, int64_t n) {
    const bool stream = stream_flag;
    S* out = ptr[0];
    const S* grad = ptr[1];
    const S* result = ptr[2];
    if (stride[0] == 1 && stride[1] == 1 && stride[2] == 1) {
      int64_t i = stream ? elements_to_alignment<S, W>(out, n) : 0;
      for (int64_t j = 0; j < i; ++j) out[j] = Op::backward(grad[j], result[j]);
      for (; i + 2 * W <= n; i += 2 * W) {
        const V g0 = load(grad + i), r0 = load(result + i);
        const V g1 = load(grad + i + W), r1 = load(result + i + W);
        store(out + i, Op::backward(g0, r0), stream);
        store(out + i + W, Op::backward(g1, r1), stream);
      }
      for (; i < n; ++i) out[i] = Op::backward(grad[i], result[i]);
      if (stream) stream_fence();
    } else if (stride[0] == 1 && stride[1] == 0 && stride[2] == 1) {
      // grad_output broadcast along the run, as the gradient of x.relu().sum() is.
      const V g(*grad);
      int64_t i = 0;
      for (; i + W <= n; i += W) Op::backward(g, V::loadu(result + i)).store(out + i);
      for (; i < n; ++i) out[i] = Op::backward(*grad, result[i]);
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
