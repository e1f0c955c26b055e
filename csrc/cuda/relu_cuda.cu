// The CUDA kernels and entry points. The rules per element are ReluScalar (relu.h), shared with the CPU kernels, and
// so are the checks and the layout work.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "../relu.h"

namespace relu_ext {
namespace cuda {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;                // 16-byte packs in flight per thread
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride loops cover the rest
constexpr int kMaxDims = 25;             // as torch's CUDA offset calculator

template <typename S>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(S);
  S v[kSize];
};

// kInputs == 1: relu(in0); kInputs == 2: relu_backward(grad = in0, result = in1).
template <typename T, int kInputs, typename S>
__device__ __forceinline__ S apply(S a, S b) {
  if constexpr (kInputs == 1) {
    return ReluScalar<T>::forward(a);
  } else {
    return ReluScalar<T>::backward(a, b);
  }
}

// Flat operands that share their offset from 16-byte alignment: the first `head` elements and the last ones after
// the packs go one per thread, the body in 16-byte packs.
template <typename T, int kInputs, typename S>
__global__ void flat_vectorized_kernel(S* out, const S* in0, const S* in1, int64_t n, int64_t head, int64_t npacks) {
  using P = Pack<S>;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t tail_start = head + npacks * P::kSize;
  if (tid < head + (n - tail_start)) {
    const int64_t i = tid < head ? tid : tail_start + (tid - head);
    out[i] = apply<T, kInputs>(in0[i], kInputs == 2 ? in1[i] : S(0));
  }
  P* out_p = reinterpret_cast<P*>(out + head);
  const P* in0_p = reinterpret_cast<const P*>(in0 + head);
  const P* in1_p = reinterpret_cast<const P*>(in1 + head);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x * kUnroll;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x * kUnroll + threadIdx.x; base < npacks;
       base += step) {
    P a[kUnroll], b[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + static_cast<int64_t>(u) * blockDim.x;
      if (i < npacks) {
        a[u] = in0_p[i];
        if constexpr (kInputs == 2) b[u] = in1_p[i];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + static_cast<int64_t>(u) * blockDim.x;
      if (i < npacks) {
        P r;
#pragma unroll
        for (int j = 0; j < P::kSize; ++j) r.v[j] = apply<T, kInputs>(a[u].v[j], kInputs == 2 ? b[u].v[j] : S(0));
        out_p[i] = r;
      }
    }
  }
}

// The plan in a fixed-size form that a kernel takes by value.
struct DevicePlan {
  int ndim;
  int64_t numel;
  int64_t sizes[kMaxDims];
  int64_t strides[3][kMaxDims];
  void* data[3];
};

// Any layout: each element's offsets come from its flat index over the plan's (merged) dims.
template <typename T, int kInputs, typename S, typename Index>
__global__ void strided_kernel(const DevicePlan p) {
  const Index numel = static_cast<Index>(p.numel);
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    Index rest = i;
    Index offset[kInputs + 1] = {};
    for (int d = 0; d < p.ndim; ++d) {
      const Index size = static_cast<Index>(p.sizes[d]);
      const Index index = rest % size;
      rest /= size;
#pragma unroll
      for (int k = 0; k <= kInputs; ++k) offset[k] += index * static_cast<Index>(p.strides[k][d]);
    }
    const S a = static_cast<const S*>(p.data[1])[offset[1]];
    const S b = kInputs == 2 ? static_cast<const S*>(p.data[2])[offset[kInputs]] : S(0);
    static_cast<S*>(p.data[0])[offset[0]] = apply<T, kInputs>(a, b);
  }
}

static unsigned int grid_for(int64_t work_items) {
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(kMaxBlocks, (work_items + kThreads - 1) / kThreads)));
}

// Raises before anything is written.
static void check_dims(const ElementwisePlan& p) {
  TORCH_CHECK(p.ndim() <= kMaxDims, "relu_ext: on CUDA a tensor's layout may have at most ", kMaxDims,
              " dimensions that cannot be merged (this one has ", p.ndim(), "); call .contiguous() on it first");
}

static DevicePlan device_plan(const ElementwisePlan& p) {
  TORCH_INTERNAL_ASSERT(p.ndim() <= kMaxDims);
  DevicePlan d{};
  d.ndim = p.ndim();
  d.numel = p.numel;
  for (int k = 0; k < p.ntensors; ++k) {
    d.data[k] = p.data[k];
    for (int i = 0; i < d.ndim; ++i) d.strides[k][i] = p.strides[k][i];
  }
  for (int i = 0; i < d.ndim; ++i) d.sizes[i] = p.sizes[i];
  return d;
}

// 32-bit index math is faster; it serves when every flat index and every element offset fits in 32 bits.
static bool fits_int32(const DevicePlan& p, int ntensors) {
  if (p.numel > INT32_MAX) return false;
  for (int k = 0; k < ntensors; ++k) {
    int64_t last = 0;
    for (int d = 0; d < p.ndim; ++d) last += (p.sizes[d] - 1) * p.strides[k][d];
    if (last > INT32_MAX) return false;
  }
  return true;
}

template <typename T, int kInputs>
void launch_elementwise(const ElementwisePlan& plan) {
  using S = typename ReluScalar<T>::S;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const DevicePlan p = device_plan(plan);
  bool flat = p.ndim == 1;
  for (int k = 0; k <= kInputs; ++k) flat = flat && p.strides[k][0] == 1;
  const auto misalignment = [&](int k) { return reinterpret_cast<uintptr_t>(p.data[k]) % 16; };
  bool same_alignment = true;
  for (int k = 1; k <= kInputs; ++k) same_alignment = same_alignment && misalignment(k) == misalignment(0);
  if (flat && same_alignment) {
    const int64_t head = std::min<int64_t>(p.numel, ((16 - misalignment(0)) % 16) / sizeof(S));
    const int64_t npacks = (p.numel - head) / Pack<S>::kSize;
    const int64_t loose = p.numel - npacks * Pack<S>::kSize;  // head and tail, one thread each
    const int64_t work = std::max((npacks + kUnroll - 1) / kUnroll, loose);
    S* out = static_cast<S*>(p.data[0]);
    const S* in0 = static_cast<const S*>(p.data[1]);
    const S* in1 = kInputs == 2 ? static_cast<const S*>(p.data[2]) : in0;
    flat_vectorized_kernel<T, kInputs><<<grid_for(work), kThreads, 0, stream>>>(out, in0, in1, p.numel, head, npacks);
  } else if (fits_int32(p, kInputs + 1)) {
    strided_kernel<T, kInputs, S, int32_t><<<grid_for(p.numel), kThreads, 0, stream>>>(p);
  } else {
    strided_kernel<T, kInputs, S, int64_t><<<grid_for(p.numel), kThreads, 0, stream>>>(p);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// The 1-bit mask (relu.h: empty_mask), bit i of element i in the plan's order, packed a 32-bit word a warp with
// no atomics: each word is written whole by one thread, and the last one, if partial, byte by byte.
constexpr unsigned kFullWarp = 0xffffffffu;

__device__ __forceinline__ void store_mask_word(uint8_t* mask, int64_t word, uint32_t bits, int64_t numel) {
  const int64_t first = word * 32;
  if (first + 32 <= numel) {
    reinterpret_cast<uint32_t*>(mask)[word] = bits;
  } else {
    for (int64_t b = 0; b * 8 < numel - first; ++b) mask[word * 4 + b] = static_cast<uint8_t>(bits >> (8 * b));
  }
}

__device__ __forceinline__ uint32_t load_mask_word(const uint8_t* mask, int64_t word, int64_t numel) {
  const int64_t first = word * 32;
  if (first + 32 <= numel) return reinterpret_cast<const uint32_t*>(mask)[word];
  uint32_t bits = 0;
  for (int64_t b = 0; b * 8 < numel - first; ++b) bits |= static_cast<uint32_t>(mask[word * 4 + b]) << (8 * b);
  return bits;
}

// Any layout, one element a lane: a warp takes 32 consecutive flat indices, and its ballot is their mask word.
// kForward: out = relu(in) and the mask; else out = the bit ? in (the gradient) : 0.
// 64-bit index math only: this kernel serves uncommon layouts and the partial last word.
template <typename T, bool kForward, typename S>
__global__ void mask_strided_kernel(const DevicePlan p, uint8_t* mask) {
  const int64_t lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t word = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; word * 32 < p.numel;
       word += warps) {
    const int64_t i = word * 32 + lane;
    const bool valid = i < p.numel;
    int64_t offset[2] = {};
    int64_t rest = valid ? i : 0;
    for (int d = 0; d < p.ndim; ++d) {
      const int64_t index = rest % p.sizes[d];
      rest /= p.sizes[d];
      offset[0] += index * p.strides[0][d];
      offset[1] += index * p.strides[1][d];
    }
    S* out = static_cast<S*>(p.data[0]);
    const S* in = static_cast<const S*>(p.data[1]);
    if constexpr (kForward) {
      const S r = valid ? ReluScalar<T>::forward(in[offset[1]]) : S(0);
      if (valid) out[offset[0]] = r;
      const uint32_t bits = __ballot_sync(kFullWarp, valid && ReluScalar<T>::passes(r));
      if (lane == 0) store_mask_word(mask, word, bits, p.numel);
    } else if (valid) {
      const uint32_t bits = load_mask_word(mask, word, p.numel);
      out[offset[0]] = (bits >> lane) & 1 ? in[offset[1]] : S(0);
    }
  }
}

// Flat, 16-byte-aligned operands: 16-byte packs, a pack's bits are contiguous in its word and the lanes that share
// a word gather them with shuffles. Covers the whole words (numel rounded down to a multiple of 32).
template <typename T, bool kForward, typename S>
__global__ void mask_flat_kernel(S* out, const S* in, uint8_t* mask, int64_t npacks) {
  using P = Pack<S>;
  constexpr int kPacksPerWord = 32 / P::kSize;
  const int lane = threadIdx.x % 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  // Warp-uniform bounds (npacks is a multiple of kPacksPerWord), so every lane reaches the shuffles.
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x - lane; base < npacks;
       base += step) {
    const int64_t i = base + lane;
    const bool valid = i < npacks;
    const int shift = (lane % kPacksPerWord) * P::kSize;
    if constexpr (kForward) {
      uint32_t bits = 0;
      if (valid) {
        const P x = reinterpret_cast<const P*>(in)[i];
        P r;
#pragma unroll
        for (int j = 0; j < P::kSize; ++j) {
          r.v[j] = ReluScalar<T>::forward(x.v[j]);
          bits |= static_cast<uint32_t>(ReluScalar<T>::passes(r.v[j])) << (shift + j);
        }
        reinterpret_cast<P*>(out)[i] = r;
      }
#pragma unroll
      for (int width = 1; width < kPacksPerWord; width *= 2) bits |= __shfl_xor_sync(kFullWarp, bits, width);
      if (valid && lane % kPacksPerWord == 0) reinterpret_cast<uint32_t*>(mask)[i / kPacksPerWord] = bits;
    } else if (valid) {
      const uint32_t bits = reinterpret_cast<const uint32_t*>(mask)[i / kPacksPerWord] >> shift;
      const P g = reinterpret_cast<const P*>(in)[i];
      P r;
#pragma unroll
      for (int j = 0; j < P::kSize; ++j) r.v[j] = (bits >> j) & 1 ? g.v[j] : S(0);
      reinterpret_cast<P*>(out)[i] = r;
    }
  }
}

template <typename T, bool kForward>
void launch_mask(const ElementwisePlan& plan, uint8_t* mask) {
  using S = typename ReluScalar<T>::S;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  DevicePlan p = device_plan(plan);
  const bool flat = p.ndim == 1 && p.strides[0][0] == 1 && p.strides[1][0] == 1;
  const auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  const bool aligned = aligned16(p.data[0]) && aligned16(p.data[1]);
  const int64_t body = flat && aligned ? p.numel / 32 * 32 : 0;  // elements in whole words
  if (body > 0) {
    const int64_t npacks = body / Pack<S>::kSize;
    mask_flat_kernel<T, kForward><<<grid_for(npacks), kThreads, 0, stream>>>(
        static_cast<S*>(p.data[0]), static_cast<const S*>(p.data[1]), mask, npacks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (body == p.numel) return;
    // The rest (under 32 elements, a partial word): one warp of the general kernel on a plan that starts there.
    p.numel -= body;
    p.data[0] = static_cast<S*>(p.data[0]) + body;
    p.data[1] = static_cast<S*>(p.data[1]) + body;
    mask += body / 8;
  }
  mask_strided_kernel<T, kForward, S><<<grid_for(p.numel), kThreads, 0, stream>>>(p, mask);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

static at::Tensor relu(const at::Tensor& self) {
  check_relu_input(self, "relu");
  const c10::cuda::CUDAGuard guard(self.device());
  at::Tensor out = empty_like_elementwise({&self});
  if (out.numel() == 0) return out;
  const ElementwisePlan plan = make_plan({&out, &self});
  check_dims(plan);
  dispatch_dtype(self.scalar_type(), [&](auto tag) { launch_elementwise<decltype(tag), 1>(plan); });
  return out;
}

static at::Tensor relu_(const at::Tensor& self) {
  check_relu_input(self, "relu_");
  check_no_internal_overlap(self);
  const c10::cuda::CUDAGuard guard(self.device());
  const ElementwisePlan plan = make_plan({&self, &self});
  check_dims(plan);
  if (self.numel() == 0) return self;
  dispatch_dtype(self.scalar_type(), [&](auto tag) { launch_elementwise<decltype(tag), 1>(plan); });
  return self;
}

static at::Tensor relu_backward(const at::Tensor& grad_output, const at::Tensor& result) {
  check_relu_backward_inputs(grad_output, result);
  const c10::cuda::CUDAGuard guard(result.device());
  at::Tensor grad_input = empty_like_elementwise({&result, &grad_output});
  if (grad_input.numel() == 0) return grad_input;
  const ElementwisePlan plan = make_plan({&grad_input, &grad_output, &result});
  check_dims(plan);
  dispatch_dtype(result.scalar_type(), [&](auto tag) { launch_elementwise<decltype(tag), 2>(plan); });
  return grad_input;
}

static std::tuple<at::Tensor, at::Tensor> relu_mask(const at::Tensor& self) {
  check_relu_mask_input(self, "relu_mask");
  const c10::cuda::CUDAGuard guard(self.device());
  at::Tensor out = empty_like_elementwise({&self});
  at::Tensor mask = empty_mask(out);
  if (out.numel() == 0) return {out, mask};
  const ElementwisePlan plan = make_plan({&out, &self});
  check_dims(plan);
  uint8_t* bits = mask.data_ptr<uint8_t>();
  dispatch_floating_dtype(self.scalar_type(), [&](auto tag) { launch_mask<decltype(tag), true>(plan, bits); });
  return {out, mask};
}

static at::Tensor relu_mask_(const at::Tensor& self) {
  check_relu_mask_input(self, "relu_mask_");
  check_no_internal_overlap(self);
  const c10::cuda::CUDAGuard guard(self.device());
  const ElementwisePlan plan = make_plan({&self, &self});
  check_dims(plan);
  at::Tensor mask = empty_mask(self);
  if (self.numel() == 0) return mask;
  uint8_t* bits = mask.data_ptr<uint8_t>();
  dispatch_floating_dtype(self.scalar_type(), [&](auto tag) { launch_mask<decltype(tag), true>(plan, bits); });
  return mask;
}

static at::Tensor relu_mask_backward(const at::Tensor& grad_output, const at::Tensor& mask,
                                     c10::IntArrayRef result_stride) {
  check_mask_backward_inputs(grad_output, mask, static_cast<int64_t>(result_stride.size()));
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor grad_input = empty_mask_grad(grad_output, result_stride);
  if (grad_input.numel() == 0) return grad_input;
  const ElementwisePlan plan = make_plan({&grad_input, &grad_output});
  check_dims(plan);
  uint8_t* bits = const_cast<uint8_t*>(mask.const_data_ptr<uint8_t>());  // read only (kForward false)
  dispatch_floating_dtype(grad_output.scalar_type(), [&](auto tag) { launch_mask<decltype(tag), false>(plan, bits); });
  return grad_input;
}

}  // namespace cuda

TORCH_LIBRARY_IMPL(relu_ext, CUDA, m) {
  m.impl("relu", &cuda::relu);
  m.impl("relu_", &cuda::relu_);
  m.impl("relu_backward", &cuda::relu_backward);
  m.impl("relu_mask", &cuda::relu_mask);
  m.impl("relu_mask_", &cuda::relu_mask_);
  m.impl("relu_mask_backward", &cuda::relu_mask_backward);
}

}  // namespace relu_ext
