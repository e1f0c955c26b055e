// The relu_ext op schemas. Kernels: cpu/relu_cpu.cpp, cuda/relu_cuda.cu, autograd.cpp; fake kernels in Python.
#include <torch/library.h>

TORCH_LIBRARY(relu_ext, m) {
  m.def("relu(Tensor self) -> Tensor");
  m.def("relu_(Tensor(a!) self) -> ()");
  m.def("relu_backward(Tensor grad_output, Tensor result) -> Tensor");
}
