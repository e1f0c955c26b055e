// Output strides and the iteration plan, shared by the CPU and CUDA entry points.
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>
#include <c10/core/MemoryFormat.h>
#include <c10/util/strides.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "relu.h"

namespace relu_ext {

// The tensor iterator's rule for an elementwise output, as torch.relu and its backward (inputs: result, then
// grad_output) apply it: the inputs' strides when they share a dense layout, else dense in the inputs' order of dims.
// tests/test_parity.py compares it with torch's outputs and with the fake kernels, which take torch's meta result.
static c10::DimVector elementwise_strides(std::initializer_list<const at::Tensor*> inputs) {
  const at::Tensor& first = **inputs.begin();
  const auto sizes = first.sizes();
  const auto all = [&](auto pred) { return std::all_of(inputs.begin(), inputs.end(), pred); };
  if (all([](const at::Tensor* t) { return t->is_contiguous(); })) return c10::contiguous_strides(sizes);
  if (all([](const at::Tensor* t) { return t->is_contiguous(at::MemoryFormat::ChannelsLast); })) {
    const std::vector<int64_t> strides = c10::get_channels_last_strides_2d(sizes);
    return c10::DimVector(strides.begin(), strides.end());
  }
  if (all([&](const at::Tensor* t) { return t->is_non_overlapping_and_dense() && t->strides() == first.strides(); })) {
    return c10::DimVector(first.strides());
  }
  // The tensor iterator's insertion sort of the dims: the first input whose strides differ decides, broadcast
  // (stride 0) dims are skipped, and of two equal strides the smaller dim goes inside.
  const int64_t ndim = first.dim();
  std::vector<int64_t> perm(ndim);  // perm[0] is the innermost dim
  for (int64_t i = 0; i < ndim; ++i) perm[i] = ndim - 1 - i;
  const auto should_swap = [&](int64_t dim0, int64_t dim1) {
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
  for (const int64_t dim : perm) {
    strides[dim] = next;
    next *= sizes[dim];
  }
  return strides;
}

at::Tensor empty_like_elementwise(std::initializer_list<const at::Tensor*> inputs) {
  const at::Tensor& first = **inputs.begin();
  return at::empty_strided(first.sizes(), elementwise_strides(inputs), first.options());
}

at::Tensor empty_mask(const at::Tensor& like) {
  return at::empty({(like.numel() + 7) / 8}, like.options().dtype(at::kByte));
}

at::Tensor empty_mask_grad(const at::Tensor& grad_output, c10::IntArrayRef result_stride) {
  if (grad_output.is_non_overlapping_and_dense() && grad_output.strides() == result_stride) {
    return empty_like_elementwise({&grad_output});  // the result's layout is grad_output's
  }
  // A stand-in for the result, without data, for the tensor iterator's rule.
  const at::Tensor result =
      at::empty_strided(grad_output.sizes(), result_stride, grad_output.options().device(at::kMeta));
  const c10::DimVector strides = elementwise_strides({&result, &grad_output});
  return at::empty_strided(grad_output.sizes(), strides, grad_output.options());
}

ElementwisePlan make_plan(std::initializer_list<const at::Tensor*> operands) {
  ElementwisePlan p;
  p.ntensors = static_cast<int>(operands.size());
  TORCH_INTERNAL_ASSERT(p.ntensors <= 3);
  const at::Tensor& out = **operands.begin();
  p.numel = out.numel();
  int k = 0;
  for (const at::Tensor* t : operands) p.data[k++] = const_cast<void*>(t->const_data_ptr());

  // Every operand contiguous, or all dense with the same strides: one flat run.
  if (std::all_of(operands.begin(), operands.end(), [](const at::Tensor* t) { return t->is_contiguous(); }) ||
      std::all_of(operands.begin(), operands.end(), [&](const at::Tensor* t) {
        return t->is_non_overlapping_and_dense() && t->strides() == out.strides();
      })) {
    p.sizes.assign(1, std::max<int64_t>(p.numel, 1));
    for (k = 0; k < p.ntensors; ++k) p.strides[k].assign(1, 1);
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
  for (const int64_t d : dims) {
    const int last = p.ndim() - 1;
    bool mergeable = last >= 0;
    k = 0;
    for (const at::Tensor* t : operands) {
      mergeable = mergeable && p.strides[k][last] * p.sizes[last] == t->stride(d);
      ++k;
    }
    if (mergeable) {
      p.sizes[last] *= out.size(d);
      continue;
    }
    p.sizes.push_back(out.size(d));
    k = 0;
    for (const at::Tensor* t : operands) p.strides[k++].push_back(t->stride(d));
  }
  if (p.sizes.empty()) {  // a 0-dim tensor, or only size-1 dims: one element
    p.sizes.assign(1, 1);
    for (k = 0; k < p.ntensors; ++k) p.strides[k].assign(1, 1);
  }
  return p;
}

}  // namespace relu_ext
