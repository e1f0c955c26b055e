// Argument checks shared by the CPU and CUDA entry points and the fake kernels (through relu_ext._C).
#include <ATen/MemoryOverlap.h>

#include <atomic>
#include <string>

#include "relu.h"

namespace relu_ext {

static std::atomic<bool> wide_unsigned_forward{false};
static std::atomic<bool> wide_unsigned_backward{false};

void set_wide_unsigned_supported(bool forward, bool backward) {
  wide_unsigned_forward = forward;
  wide_unsigned_backward = backward;
}

// The name a Python user knows: "torch.complex64", not "ComplexFloat".
static std::string dtype_name(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

// What torch.relu (forward) or its threshold backward accepts, with torch's exception type (NotImplementedError) for
// the rest.
static void check_dtype(at::ScalarType dtype, const char* op, bool backward) {
  TORCH_CHECK_NOT_IMPLEMENTED(dtype != at::kBool, "relu_ext.", op, ": Boolean inputs not supported for relu (as in ",
                              "torch.relu); convert first, e.g. x.to(torch.uint8)");
  TORCH_CHECK_NOT_IMPLEMENTED(!at::isComplexType(dtype), "relu_ext.", op, ": relu is not defined for complex ",
                              "tensors (got ", dtype_name(dtype), ", as torch.relu refuses them); apply it to ",
                              "torch.view_as_real(x) or to x.real and x.imag");
  bool supported = false;
  switch (dtype) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kBFloat16:
    case at::kChar: case at::kByte: case at::kShort: case at::kInt: case at::kLong:
      supported = true;
      break;
    case at::kUInt16: case at::kUInt32: case at::kUInt64:
      supported = (backward ? wide_unsigned_backward : wide_unsigned_forward).load(std::memory_order_relaxed);
      break;
    default:
      break;
  }
  TORCH_CHECK_NOT_IMPLEMENTED(supported, "relu_ext.", op, ": dtype ", dtype_name(dtype), " is not supported (the ",
                              "installed torch refuses it too); convert first, e.g. x.to(torch.float32)");
}

static void check_input(const at::Tensor& self, const char* op, bool backward) {
  TORCH_CHECK(self.defined(), "relu_ext.", op, ": got an undefined tensor; pass a tensor");
  check_dtype(self.scalar_type(), op, backward);
  TORCH_CHECK_NOT_IMPLEMENTED(self.layout() == at::kStrided, "relu_ext.", op, ": the kernels take strided (dense) ",
                              "tensors, got ", self.layout(), "; relu_ext.relu handles sparse and nested tensors, ",
                              "or call .to_dense() first");
}

void check_relu_input(const at::Tensor& self, const char* op) { check_input(self, op, /*backward=*/false); }

// The mask forms keep a gradient's mask, so they take what autograd differentiates: relu on other dtypes saves
// nothing, and relu_ext.relu(x, save_mask=True) runs plain relu there.
static void check_floating(at::ScalarType dtype, const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(dtype), "relu_ext.", op, ": the mask ops take floating-point ",
                              "tensors (got ", dtype_name(dtype), "), as only those have gradients; use ",
                              "relu_ext::relu for other dtypes");
}

void check_relu_mask_input(const at::Tensor& self, const char* op) {
  check_input(self, op, /*backward=*/false);
  check_floating(self.scalar_type(), op);
}

void check_relu_backward_inputs(const at::Tensor& grad_output, const at::Tensor& result) {
  check_input(grad_output, "relu_backward (grad_output)", /*backward=*/true);
  check_input(result, "relu_backward (result)", /*backward=*/true);
  TORCH_CHECK(grad_output.sym_sizes() == result.sym_sizes(), "relu_ext.relu_backward: grad_output has shape ",
              grad_output.sym_sizes(), " but result has shape ", result.sym_sizes(), "; they must match ",
              "(grad_output is the gradient of relu's output, result is that output)");
  TORCH_CHECK(grad_output.scalar_type() == result.scalar_type(), "relu_ext.relu_backward: grad_output has dtype ",
              dtype_name(grad_output.scalar_type()), " but result has dtype ", dtype_name(result.scalar_type()),
              "; they must match: convert grad_output with .to(result.dtype)");
  TORCH_CHECK(grad_output.device() == result.device(), "relu_ext.relu_backward: grad_output is on ",
              grad_output.device(), " but result is on ", result.device(),
              "; they must be on the same device: move one with .to(other.device)");
}

void check_mask_backward_inputs(const at::Tensor& grad_output, const at::Tensor& mask, int64_t result_ndim) {
  check_input(grad_output, "relu_mask_backward (grad_output)", /*backward=*/true);
  check_floating(grad_output.scalar_type(), "relu_mask_backward (grad_output)");
  const char* fix = "; pass the mask relu_ext::relu_mask returned for this gradient's output";
  TORCH_CHECK(mask.defined(), "relu_ext.relu_mask_backward: got an undefined mask", fix);
  TORCH_CHECK(mask.scalar_type() == at::kByte && mask.layout() == at::kStrided && mask.dim() == 1 &&
                  mask.is_contiguous(),
              "relu_ext.relu_mask_backward: the mask must be a contiguous 1-D torch.uint8 tensor, got ",
              dtype_name(mask.scalar_type()), " of shape ", mask.sym_sizes(), fix);
  TORCH_CHECK(mask.sym_numel() == (grad_output.sym_numel() + 7) / 8, "relu_ext.relu_mask_backward: a mask of ",
              mask.sym_numel(), " bytes cannot cover grad_output's ", grad_output.sym_numel(),
              " elements (one bit each)", fix);
  TORCH_CHECK(mask.device() == grad_output.device(), "relu_ext.relu_mask_backward: grad_output is on ",
              grad_output.device(), " but the mask is on ", mask.device(), "; move one with .to(other.device)");
  TORCH_CHECK(result_ndim == grad_output.dim(), "relu_ext.relu_mask_backward: result_stride has ", result_ndim,
              " entries but grad_output has ", grad_output.dim(), " dims; pass the strides of relu_mask's output");
}

void check_no_internal_overlap(const at::Tensor& self) {
  // torch's own words for the same mistake.
  TORCH_CHECK(at::has_internal_overlap(self) != at::MemOverlap::Yes,
              "unsupported operation: more than one element of the written-to tensor refers to a single memory "
              "location. Please clone() the tensor before performing the operation.");
}

}  // namespace relu_ext
