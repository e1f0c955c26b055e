// relu_ext: the op schemas, the argument checks and layout work shared by both devices, and the CPU entry points.
#include <ATen/EmptyTensor.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/Version.h>
#include <ATen/ops/empty_strided.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/MemoryFormat.h>
#include <c10/util/strides.h>
#include <torch/library.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "relu.h"

namespace relu_ext {

// ---------------------------------------------------------------------------------------------------------------
// Checks

static const char* kSupportedDtypes =
    "torch.float32, float64, float16, bfloat16, int8, uint8, int16, int32 and int64";

// The name a Python user knows: "torch.complex64", not "ComplexFloat".
static std::string dtype_name(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

void check_relu_input(const at::Tensor& self, const char* op) {
  TORCH_CHECK(self.defined(), "relu_ext.", op, ": got an undefined tensor; pass a tensor");
  const auto dtype = self.scalar_type();
  // NotImplementedError for every dtype torch.relu rejects, as torch.relu raises.
  TORCH_CHECK_NOT_IMPLEMENTED(dtype != at::kBool, "relu_ext.", op,
                              ": Boolean inputs not supported for relu (as in torch.relu); "
                              "convert first, e.g. x.to(torch.uint8)");
  TORCH_CHECK_NOT_IMPLEMENTED(!at::isComplexType(dtype), "relu_ext.", op, ": relu is not defined for complex tensors ",
                              "(got ", dtype_name(dtype), ", as torch.relu refuses them); apply it to x.real and x.imag, or to ",
                              "torch.view_as_real(x)");
  bool supported = false;
  switch (dtype) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kBFloat16:
    case at::kChar: case at::kByte: case at::kShort: case at::kInt: case at::kLong:
      supported = true;
      break;
    default:
      break;
  }
  TORCH_CHECK_NOT_IMPLEMENTED(supported, "relu_ext.", op, ": dtype ", dtype_name(dtype), " is not supported (torch.relu does not ",
                              "support it either); supported dtypes: ", kSupportedDtypes,
                              ". Convert first, e.g. x.to(torch.float32)");
  TORCH_CHECK(self.layout() == at::kStrided, "relu_ext.", op, ": only strided (dense) tensors are supported, got ",
              self.layout(), "; call .to_dense() first");
}

void check_no_internal_overlap(const at::Tensor& self) {
  // torch's own words for the same mistake, checked before anything is written.
  TORCH_CHECK(at::has_internal_overlap(self) != at::MemOverlap::Yes,
              "unsupported operation: more than one element of the written-to tensor refers to a single memory "
              "location. Please clone() the tensor before performing the operation.");
}

void check_relu_backward_inputs(const at::Tensor& grad_output, const at::Tensor& result, bool in_place) {
  const char* op = in_place ? "relu_backward_" : "relu_backward";
  check_relu_input(grad_output, in_place ? "relu_backward_ (grad_output)" : "relu_backward (grad_output)");
  check_relu_input(result, in_place ? "relu_backward_ (result)" : "relu_backward (result)");
  TORCH_CHECK(grad_output.sizes() == result.sizes(), "relu_ext.", op, ": grad_output has shape ",
              grad_output.sizes(), " but result has shape ", result.sizes(),
              "; they must match (grad_output is the gradient of relu's output, result is that output)");
  TORCH_CHECK(grad_output.scalar_type() == result.scalar_type(), "relu_ext.", op, ": grad_output has dtype ",
              dtype_name(grad_output.scalar_type()), " but result has dtype ", dtype_name(result.scalar_type()),
              "; they must match: convert grad_output with .to(result.dtype)");
  TORCH_CHECK(grad_output.device() == result.device(), "relu_ext.", op, ": grad_output is on ",
              grad_output.device(), " but result is on ", result.device(),
              "; they must be on the same device: move one with .to(other.device)");
  if (in_place) {
    // torch's words and rules for its in-place ops: result may be grad_output itself, not a part of it.
    check_no_internal_overlap(grad_output);
    at::assert_no_partial_overlap(grad_output, result);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Layout

// CPU outputs of this many bytes or more go on transparent huge pages when glibc would give them fresh pages. From
// 32 MB up glibc usually maps every allocation fresh from the kernel and unmaps it on free, so each call pays a
// page fault per 4 KiB page touched (about 1.5 us each here: 12 ms of a 12.5 ms torch.relu at 2^23 float32
// elements); but where its heap already holds a free region that big it hands that out, with no fault at all, and
// then that is best (a benchmark run caught torch at 1.5 ms against relu_ext's huge pages at 2.4 ms for a 32 MB
// output). Below 32 MB glibc reuses its heap and huge pages were slower at every size measured (2^18 to 2^22 floats).
constexpr size_t kHugePageMinBytes = size_t(32) << 20;
constexpr size_t kHugePageBytes = size_t(2) << 20;

// RELU_EXT_HUGE_PAGES=0 (read once) keeps outputs on 4 KiB pages. For machines where a huge page can be cold: on a
// VM whose host takes back free memory (virtio balloon free page reporting, as here), the first call after a pause
// of a second or two finds its huge pages handed back and pays 512 host faults for each (2^26 float32 forward:
// about 300 ms against torch's 90 ms; 21 ms in a loop). Calls in a loop, as in training, reuse warm ones. Taking
// 4 KiB pages for a call that came more than 150 ms after the last large output was freed (here no call within
// 100 ms of a free found its huge pages cold, 30 tried; 3 of 10 did at 200 ms, 8 of 10 at 1.5 s) made a lone call
// after a 1.5 s pause cost what torch's does (113-129 ms against 317-334), but the next call's huge pages were then
// cold instead (freed 4 KiB pages do not come back as warm 2 MiB blocks): three calls after a pause took 486-514 ms
// against 379-405 (torch 270-365). The cold call only moved, so that was dropped.
static bool huge_pages_allowed() {
  static const bool allowed = [] {
    const char* value = std::getenv("RELU_EXT_HUGE_PAGES");
    if (value == nullptr || std::string(value) == "1") return true;
    if (std::string(value) == "0") return false;
    TORCH_WARN("relu_ext: RELU_EXT_HUGE_PAGES=", value, " is neither 0 nor 1; huge pages stay on");
    return true;
  }();
  return allowed;
}

// Mid-size CPU outputs are placed in their 4 KiB page away from the inputs. A store and a later load whose
// addresses agree in their low 12 bits look alike to the CPU ("4K aliasing") and the load waits for the store;
// with the output starting 64 or 128 bytes above the input modulo 4 KiB, each iteration's loads hit the previous
// iteration's stores. Where glibc put the output was chance, for torch's outputs as for ours. Measured here
// (float32, 2 threads, output forced to each offset): forward at 2^19 elements 25.6 us at offset 0, 1024 or 2048,
// 29.3 at 64, 32.6 at 128; backward 37.8-40.0 against 42.1 and 46.2. Moving only the outputs that would land within
// reach (the others taking torch-sized blocks, as a training step's tensors free them) was tried and showed no clear
// gain in a step or in a loop: the same build swung by up to 2x at 2^21 elements from one process to the next, for
// torch's calls as for relu_ext's; tried again later, in the seed's SimpleModel step at batch 4096, it was no better
// than placing every output (ratio nn.ReLU step / relu_ext step 0.96-1.00 over 8 processes).
// From 2 MiB only: below, the page more that placing takes makes the block a size no other tensor of the same shape
// frees, and a training step's heap settles differently. The SimpleModel step, outputs placed from 256 KiB against
// from 2 MiB, in one process taking turns with nn.ReLU (ratio nn.ReLU step / relu_ext step, median of 16-30 rounds):
// batch 4096 (a 320 KB relu output) 0.93-1.02, mean 0.982, against 0.98-1.02, mean 0.995: better in 22 of 28
// processes, even in 3 (11 of the 28 ran after a pass over the benchmark's sizes, as the benchmark's step does, and
// there placing lost most, down to 0.93); batch 16384 (1.3 MB) mean 0.978 against 1.004, better in 5 of 6; batch
// 32768 (2.6 MB) even (1.068 against 1.063). In a loop of calls placing gained little from 256 KiB to 1 MiB: forward
// at 2^16 float32 (256 KB) 1.16x torch placed against 1.05x; 2^17, 2^18 and the backward even.
constexpr size_t kPlacedMinBytes = size_t(2) << 20;
constexpr uintptr_t kPageBytes = 4096;

// The output's offset in its page: half a page above the first input, or another that is not within 768 bytes
// above any input's offset (the distance at which the aliasing was measured to stop).
static uintptr_t output_page_offset(std::initializer_list<const at::Tensor*> inputs) {
  const uintptr_t first = reinterpret_cast<uintptr_t>((*inputs.begin())->const_data_ptr());
  for (uintptr_t shift : {uintptr_t(2048), uintptr_t(3072), uintptr_t(1024), uintptr_t(0)}) {
    const uintptr_t offset = ((first + shift) % kPageBytes) & ~uintptr_t(63);
    const bool clear = std::all_of(inputs.begin(), inputs.end(), [&](const at::Tensor* t) {
      const uintptr_t above = (offset - reinterpret_cast<uintptr_t>(t->const_data_ptr())) % kPageBytes;
      return above == 0 || above >= 768;
    });
    if (clear) return offset;
  }
  return 0;
}

#if defined(__linux__)
// Whether most of [data, data + nbytes) is already in memory (sampled at 16 pages): memory glibc reused rather
// than mapped fresh from the kernel, whose pages would fault on first touch.
static bool mostly_resident(const void* data, size_t nbytes) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(data) & ~(kPageBytes - 1);
  const uintptr_t span = reinterpret_cast<uintptr_t>(data) + nbytes - 1 - first;
  int resident = 0;
  constexpr int kSamples = 16;
  for (int i = 0; i < kSamples; ++i) {
    const uintptr_t page = first + (span * i / (kSamples - 1)) / kPageBytes * kPageBytes;
    unsigned char in_core = 0;
    if (mincore(reinterpret_cast<void*>(page), kPageBytes, &in_core) == 0 && (in_core & 1)) ++resident;
  }
  return resident * 2 > kSamples;
}
#endif

// A CPU tensor on `memory` (freed by its deleter): ordinary, resizable (grown by the CPU allocator like any other).
static at::Tensor wrap_cpu_output(c10::DataPtr memory, size_t nbytes, at::IntArrayRef sizes, at::IntArrayRef strides,
                                  const at::TensorOptions& options) {
  c10::Storage storage(c10::Storage::use_byte_size_t(), nbytes, std::move(memory), c10::GetCPUAllocator(),
                       /*resizable=*/true);
  at::Tensor out = at::detail::make_tensor<c10::TensorImpl>(
      std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU), options.dtype());
  out.unsafeGetTensorImpl()->set_sizes_and_strides(sizes, strides);
  return out;
}

static at::Tensor empty_output(at::IntArrayRef sizes, at::IntArrayRef strides, const at::TensorOptions& options,
                               std::initializer_list<const at::Tensor*> inputs) {
  if (!options.device().is_cpu()) return at::empty_strided(sizes, strides, options);
  const size_t nbytes = at::detail::computeStorageNbytes(sizes, strides, options.dtype().itemsize());
  if (nbytes < kPlacedMinBytes) return at::detail::empty_strided_cpu(sizes, strides, options);
  if (nbytes < kHugePageMinBytes || !huge_pages_allowed()) {
    // From torch's CPU allocator (so its memory profiling sees it), a page more than needed, then shifted.
    c10::DataPtr block = c10::GetCPUAllocator()->allocate(nbytes + kPageBytes);
    const uintptr_t base = reinterpret_cast<uintptr_t>(block.get());
    const uintptr_t shift = (output_page_offset(inputs) - base) % kPageBytes;
    const c10::DeleterFnPtr deleter = block.get_deleter();
    c10::DataPtr shifted(reinterpret_cast<void*>(base + shift), block.release_context(), deleter, c10::kCPU);
    return wrap_cpu_output(std::move(shifted), nbytes, sizes, strides, options);
  }
#if defined(__linux__)
  {
    // glibc may hand out memory it already has (its heap can hold a freed region this big): no fault to save then.
    c10::DataPtr block = c10::GetCPUAllocator()->allocate(nbytes);
    if (mostly_resident(block.get(), nbytes)) return wrap_cpu_output(std::move(block), nbytes, sizes, strides, options);
  }  // fresh pages: given back, and taken again 2 MiB-aligned for huge pages
  void* data = nullptr;
  TORCH_CHECK(posix_memalign(&data, kHugePageBytes, nbytes) == 0, "relu_ext: out of memory allocating ", nbytes,
              " bytes");
  // A hint: where THP is off, this fails harmlessly and small pages are used. The pages are not touched here: the
  // kernel's threads fault in each their own part as they write it, so the zeroing is split between the threads
  // and the freshly zeroed 2 MiB is still in cache when it is written (a C loop here, 256 MB: 22-24 ms, against
  // 39 ms when one thread populated everything first and 81 ms on small pages). The first call after a pause can
  // find them cold (huge_pages_allowed).
  madvise(data, nbytes, MADV_HUGEPAGE);
  return wrap_cpu_output(c10::DataPtr(data, data, &std::free, c10::kCPU), nbytes, sizes, strides, options);
#else
  return at::detail::empty_strided_cpu(sizes, strides, options);
#endif
}

c10::DimVector elementwise_strides(std::initializer_list<const at::Tensor*> inputs) {
  const at::Tensor& first = **inputs.begin();
  const auto sizes = first.sizes();
  // The fast paths of ATen's tensor iterator, in its order.
  if (std::all_of(inputs.begin(), inputs.end(), [](const at::Tensor* t) { return t->is_contiguous(); })) {
    return c10::contiguous_strides(sizes);
  }
  if (std::all_of(inputs.begin(), inputs.end(),
                  [](const at::Tensor* t) { return t->is_contiguous(at::MemoryFormat::ChannelsLast); })) {
    const std::vector<int64_t> strides = c10::get_channels_last_strides_2d(sizes);
    return c10::DimVector(strides.begin(), strides.end());
  }
  if (std::all_of(inputs.begin(), inputs.end(), [&](const at::Tensor* t) {
        return t->is_non_overlapping_and_dense() && t->strides() == first.strides();
      })) {
    return c10::DimVector(first.strides());
  }
  // Otherwise dense in the inputs' order of dims: the tensor iterator's insertion sort, where the first input whose
  // strides differ decides, broadcast (stride 0) dims are skipped, and equal strides put the smaller dim inside.
  const int64_t ndim = first.dim();
  std::vector<int64_t> perm(ndim);  // perm[0] is the innermost dim
  for (int64_t i = 0; i < ndim; ++i) perm[i] = ndim - 1 - i;
  auto should_swap = [&](int64_t dim0, int64_t dim1) {
    for (const at::Tensor* t : inputs) {
      const int64_t s0 = t->stride(dim0), s1 = t->stride(dim1);
      if (s0 == 0 || s1 == 0) continue;
      if (s0 != s1) return s0 < s1 ? -1 : 1;
      if (sizes[dim0] > sizes[dim1]) return 1;
    }
    return 0;
  };
  for (int64_t i = 1; i < ndim; ++i) {
    int64_t dim1 = i;
    for (int64_t dim0 = i - 1; dim0 >= 0; --dim0) {
      const int cmp = should_swap(perm[dim0], perm[dim1]);
      if (cmp > 0) {
        std::swap(perm[dim0], perm[dim1]);
        dim1 = dim0;
      } else if (cmp < 0) {
        break;
      }
    }
  }
  c10::DimVector strides(ndim);
  int64_t next = 1;
  for (int64_t i = 0; i < ndim; ++i) {
    strides[perm[i]] = next;
    next *= sizes[perm[i]];
  }
  return strides;
}

at::Tensor empty_like_elementwise(std::initializer_list<const at::Tensor*> inputs) {
  const at::Tensor& first = **inputs.begin();
  // The common small case straight to the allocator, without working out strides and placement.
  if (first.is_cpu() && first.nbytes() < kPlacedMinBytes &&
      std::all_of(inputs.begin(), inputs.end(), [](const at::Tensor* t) { return t->is_contiguous(); })) {
    return at::detail::empty_cpu(first.sizes(), first.scalar_type(), /*pin_memory=*/false);
  }
  return empty_output(first.sizes(), elementwise_strides(inputs), first.options(), inputs);
}

ElementwisePlan make_plan(std::initializer_list<const at::Tensor*> operands) {
  ElementwisePlan p;
  p.ntensors = static_cast<int>(operands.size());
  TORCH_INTERNAL_ASSERT(p.ntensors <= 3);
  const at::Tensor& out = **operands.begin();
  p.numel = out.numel();
  int k = 0;
  for (const at::Tensor* t : operands) p.data[k++] = const_cast<void*>(t->const_data_ptr());

  // The common case first: every operand contiguous, or all dense with the same strides, is one flat run.
  const bool one_run =
      std::all_of(operands.begin(), operands.end(), [](const at::Tensor* t) { return t->is_contiguous(); }) ||
      std::all_of(operands.begin(), operands.end(), [&](const at::Tensor* t) {
        return t->is_non_overlapping_and_dense() && t->strides() == out.strides();
      });
  if (one_run) {
    p.ndim = 1;
    p.sizes[0] = std::max<int64_t>(p.numel, 1);
    for (k = 0; k < p.ntensors; ++k) p.strides[k][0] = 1;
    return p;
  }

  // Innermost first: ascending strides of the written tensor, ties broken by the inputs'.
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < out.dim(); ++d) {
    if (out.size(d) != 1) dims.push_back(d);
  }
  std::stable_sort(dims.begin(), dims.end(), [&](int64_t a, int64_t b) {
    for (const at::Tensor* t : operands) {
      if (t->stride(a) != t->stride(b)) return t->stride(a) < t->stride(b);
    }
    return false;
  });

  p.ndim = 0;
  for (int64_t d : dims) {
    if (p.ndim > 0) {
      bool mergeable = true;
      k = 0;
      for (const at::Tensor* t : operands) {
        mergeable &= p.strides[k][p.ndim - 1] * p.sizes[p.ndim - 1] == t->stride(d);
        ++k;
      }
      if (mergeable) {
        p.sizes[p.ndim - 1] *= out.size(d);
        continue;
      }
    }
    TORCH_CHECK(p.ndim < kMaxDims, "relu_ext: this tensor's layout has more than ", kMaxDims,
                " dimensions that cannot be merged; call .contiguous() on it first");
    p.sizes[p.ndim] = out.size(d);
    k = 0;
    for (const at::Tensor* t : operands) p.strides[k++][p.ndim] = t->stride(d);
    ++p.ndim;
  }
  if (p.ndim == 0) {  // a 0-dim tensor or one of only size-1 dims: one element
    p.ndim = 1;
    p.sizes[0] = 1;
    for (k = 0; k < p.ntensors; ++k) p.strides[k][0] = 1;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU entry points

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

// The kernels for the instruction set torch itself uses on this CPU (ATEN_CPU_CAPABILITY can lower it).
static const Kernels& kernels() {
  static const Kernels& chosen = [] () -> const Kernels& {
#if defined(__x86_64__) && defined(__GNUC__)
    const std::string capability = at::get_cpu_capability();
    if (capability == "AVX512") return AVX512::kernels;
    if (capability == "AVX2") return AVX2::kernels;
#endif
    return DEFAULT::kernels;
  }();
  return chosen;
}

// The size of the last-level cache as Linux describes it (what lscpu prints). glibc's sysconf answers from an older
// CPUID leaf, which on this AMD VM says 320 MB against the 32 MiB Linux reports; measured, the streaming stores pay
// off from 48 MB moved, so Linux's figure is the one that matches the hardware.
static int64_t last_level_cache_bytes() {
  int best_level = 0;
  int64_t best_bytes = 0;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), type_file(dir + "type"), size_file(dir + "size");
    int level = 0;
    std::string type, size;
    if (!(level_file >> level) || !(type_file >> type) || !(size_file >> size)) break;
    if (type == "Instruction" || level < best_level) continue;
    int64_t bytes = std::atoll(size.c_str());
    if (!size.empty() && size.back() == 'K') bytes <<= 10;
    if (!size.empty() && size.back() == 'M') bytes <<= 20;
    best_level = level;
    best_bytes = bytes;
  }
  if (best_bytes > 0) return best_bytes;
  long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (bytes <= 0) bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return bytes > 0 ? int64_t(bytes) : INT64_MAX;
}

// Out-of-place outputs go around the caches (non-temporal stores) when a call moves more bytes than the last-level
// cache holds, as glibc's memcpy does past its threshold: the output could not stay cached anyway, and a cached
// store first reads the line it overwrites. Measured here (32 MiB L3, 2 threads, float32, same process A/B):
// backward at 2^22 elements (48 MB) 850-1010 us with cached stores, 634-658 us streaming, torch 792-870 us; but
// inside the cache they lose (forward at 2^21, 16 MB: 96 us against 300 us), and in place they lost at every
// size (the read has already brought the line in), so relu_ never uses them; where a call moves more than the cache
// holds but the tensor alone still fits, it walks each thread's part as two interleaved halves instead (relu_cpu.h).
// Streaming only a share of the output near the cache's size, so that the input and the rest stay cached, was
// measured and dropped (each thread's first 0, 25, 50 or 75% streamed, then cached stores; taking turns by the block
// in one process, two processes): forward at 2^22 elements 479/505/557/664 us and 526/524/562/664 us; backward at
// 2^21 332/331/317/350 and 317/301/318/347 us (torch 399-773 us in the same runs). No share beat none.
static std::atomic<int64_t> stream_min_bytes{-1};  // -1: the last-level cache size, looked up on first use

void set_stream_min_bytes(int64_t bytes) { stream_min_bytes = bytes; }

static int64_t cache_bytes() {
  static const int64_t bytes = last_level_cache_bytes();
  return bytes;
}

static bool past_the_cache(const at::Tensor& out, int operands) {
  const int64_t threshold = stream_min_bytes.load(std::memory_order_relaxed);
  return int64_t(out.nbytes()) * operands > (threshold < 0 ? cache_bytes() : threshold);
}

at::Tensor relu(const at::Tensor& self) {
  check_relu_input(self, "relu");
  at::Tensor out = empty_like_elementwise({&self});
  if (out.numel() != 0) {
    ElementwisePlan plan = make_plan({&out, &self});
    plan.stream_stores = past_the_cache(out, 2);
    kernels().forward(plan, self.scalar_type());
  }
  return out;
}

void relu_(const at::Tensor& self) {
  check_relu_input(self, "relu_");
  check_no_internal_overlap(self);
  self.unsafeGetTensorImpl()->bump_version();  // as torch's in-place ops do; custom ops get no automatic bump
  if (self.numel() != 0) {
    ElementwisePlan plan = make_plan({&self, &self});
    // Not for tensors bigger than the cache: there the plain sequential walk was as fast or faster (relu_cpu.h).
    plan.interleave = past_the_cache(self, 2) && int64_t(self.nbytes()) <= cache_bytes();
    kernels().forward(plan, self.scalar_type());
  }
}

at::Tensor relu_backward(const at::Tensor& grad_output, const at::Tensor& result) {
  check_relu_backward_inputs(grad_output, result);
  at::Tensor grad_input = empty_like_elementwise({&result, &grad_output});
  if (grad_input.numel() != 0) {
    ElementwisePlan plan = make_plan({&grad_input, &grad_output, &result});
    plan.stream_stores = past_the_cache(grad_input, 3);
    kernels().backward(plan, result.scalar_type());
  }
  return grad_input;
}

void relu_backward_(const at::Tensor& grad_output, const at::Tensor& result) {
  check_relu_backward_inputs(grad_output, result, /*in_place=*/true);
  grad_output.unsafeGetTensorImpl()->bump_version();
  if (grad_output.numel() != 0) {
    // Cached stores: in place the read has already brought each line in (as for relu_).
    ElementwisePlan plan = make_plan({&grad_output, &grad_output, &result});
    kernels().backward(plan, result.scalar_type());
  }
}

}  // namespace cpu

TORCH_LIBRARY(relu_ext, m) {
  m.def("relu(Tensor self) -> Tensor");
  m.def("relu_(Tensor(a!) self) -> ()");
  m.def("relu_backward(Tensor grad_output, Tensor result) -> Tensor");
  // The gradient written over grad_output: what relu's backward runs when nothing else holds grad_output.
  m.def("relu_backward_(Tensor(a!) grad_output, Tensor result) -> ()");
}

TORCH_LIBRARY_IMPL(relu_ext, CPU, m) {
  m.impl("relu", &cpu::relu);
  m.impl("relu_", &cpu::relu_);
  m.impl("relu_backward", &cpu::relu_backward);
  m.impl("relu_backward_", &cpu::relu_backward_);
}

}  // namespace relu_ext
