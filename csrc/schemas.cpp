// The relu_ext op schemas. Kernels: cpu/relu_cpu.cpp, cuda/relu_cuda.cu, autograd.cpp; fake kernels in Python.
#include <torch/library.h>

TORCH_LIBRARY(relu_ext, m) {
  m.def("relu(Tensor self) -> Tensor");
  // relu_ returns its input, as aten::relu_ does: tracers and caches follow the written tensor through the return.
  m.def("relu_(Tensor(a!) self) -> Tensor(a!)");
  m.def("relu_backward(Tensor grad_output, Tensor result) -> Tensor");
  // The 1-bit-mask forms: the forward returns the output (as relu's) and a packed mask of !(result <= 0), which
  // with the result's strides is all the backward needs (relu.h: empty_mask).
  m.def("relu_mask(Tensor self) -> (Tensor, Tensor)");
  m.def("relu_mask_(Tensor(a!) self) -> Tensor");
  m.def("relu_mask_backward(Tensor grad_output, Tensor mask, SymInt[] result_stride) -> Tensor");
}
