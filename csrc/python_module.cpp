// relu_ext._C, the Python module: importing it loads this library and with it the op registrations. It carries what
// the build knew (relu_ext/_loader.py checks it) and the entries that relu_ext.relu and relu_ call in eager mode:
// one C call into the dispatcher, as torch.relu's own binding is, where calling the OpOverload parses its arguments
// from the schema in Python (docs/PERFORMANCE.md has the gain on small tensors).
#include <ATen/PythonTorchFunctionTLS.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include "relu.h"

namespace relu_ext {
namespace {

// What each entry calls for anything but a plain tensor outside a torch function mode (set by
// relu_ext/functional.py: the ops, as torch.ops calls them), so that a tensor subclass or a mode sees the op.
enum Entry { kRelu, kRelu_, kReluSaveMask, kReluSaveMask_, kEntries };
PyObject* fallbacks[kEntries] = {};

bool plain_tensor(PyObject* obj) { return THPVariable_CheckExact(obj) && !at::impl::torch_function_mode_enabled(); }

PyObject* call_fallback(int entry, PyObject* arg) {
  PyObject* fallback = fallbacks[entry];
  if (fallback == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "relu_ext._C: import relu_ext (not relu_ext._C alone) before calling it");
    return nullptr;
  }
  return PyObject_CallOneArg(fallback, arg);
}

// A TorchScript trace (torch.onnx.export(dynamo=False)) records plain relu, and relu_ as relu then copy_: ops that
// ONNX translates (the mask ops have no ONNX form, and a trace keeps no backward).
at::Tensor relu_save_mask_entry(const at::Tensor& self) {
  return torch::jit::tracer::isTracing() ? call_relu(self) : call_relu_save_mask(self);
}

template <void (*kCall)(const at::Tensor&)>
void in_place_entry(const at::Tensor& self) {
  if (torch::jit::tracer::isTracing()) {
    self.copy_(call_relu(self));
  } else {
    kCall(self);
  }
}

template <int kEntry, at::Tensor (*kCall)(const at::Tensor&)>
PyObject* py_out_of_place(PyObject* /*module*/, PyObject* arg) {
  HANDLE_TH_ERRORS
  if (!plain_tensor(arg)) return call_fallback(kEntry, arg);
  const at::Tensor& self = THPVariable_Unpack(arg);
  at::Tensor out;
  {
    pybind11::gil_scoped_release no_gil;  // as torch's bindings do: other Python threads run meanwhile
    out = kCall(self);
  }
  return THPVariable_Wrap(std::move(out));
  END_HANDLE_TH_ERRORS
}

// Returns the input, as torch.relu_ does.
template <int kEntry, void (*kCall)(const at::Tensor&)>
PyObject* py_in_place(PyObject* /*module*/, PyObject* arg) {
  HANDLE_TH_ERRORS
  if (!plain_tensor(arg)) return call_fallback(kEntry, arg);
  const at::Tensor& self = THPVariable_Unpack(arg);
  {
    pybind11::gil_scoped_release no_gil;
    in_place_entry<kCall>(self);
  }
  Py_INCREF(arg);
  return arg;
  END_HANDLE_TH_ERRORS
}

PyObject* py_set_fallbacks(PyObject* /*module*/, PyObject* given) {
  if (!PyTuple_Check(given) || PyTuple_GET_SIZE(given) != kEntries) {
    PyErr_Format(PyExc_TypeError, "relu_ext._C._set_fallbacks: a tuple of %d expected", static_cast<int>(kEntries));
    return nullptr;
  }
  for (int i = 0; i < kEntries; ++i) {
    Py_INCREF(PyTuple_GET_ITEM(given, i));
    Py_XSETREF(fallbacks[i], PyTuple_GET_ITEM(given, i));
  }
  Py_RETURN_NONE;
}

// The fake kernels' checks: the same code, and so the same errors, as the real kernels'.
template <void (*kCheck)(const at::Tensor&, const char*)>
PyObject* py_check_input(PyObject* /*module*/, PyObject* args) {
  HANDLE_TH_ERRORS
  PyObject* tensor;
  const char* op;
  if (!PyArg_ParseTuple(args, "Os", &tensor, &op)) return nullptr;
  kCheck(THPVariable_Unpack(tensor), op);
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyObject* py_check_relu_backward_inputs(PyObject* /*module*/, PyObject* args) {
  HANDLE_TH_ERRORS
  PyObject *grad_output, *result;
  if (!PyArg_ParseTuple(args, "OO", &grad_output, &result)) return nullptr;
  check_relu_backward_inputs(THPVariable_Unpack(grad_output), THPVariable_Unpack(result));
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyObject* py_check_mask_backward_inputs(PyObject* /*module*/, PyObject* args) {
  HANDLE_TH_ERRORS
  PyObject *grad_output, *mask;
  long long result_ndim;
  if (!PyArg_ParseTuple(args, "OOL", &grad_output, &mask, &result_ndim)) return nullptr;
  check_mask_backward_inputs(THPVariable_Unpack(grad_output), THPVariable_Unpack(mask), result_ndim);
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyObject* py_check_inplace(PyObject* /*module*/, PyObject* tensor) {
  HANDLE_TH_ERRORS
  check_inplace_allowed(THPVariable_Unpack(tensor));
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyObject* py_set_wide_unsigned_supported(PyObject* /*module*/, PyObject* args) {
  int forward, backward;
  if (!PyArg_ParseTuple(args, "pp", &forward, &backward)) return nullptr;
  set_wide_unsigned_supported(forward, backward);
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"relu", py_out_of_place<kRelu, call_relu>, METH_O,
     "relu_ext::relu on a tensor, through the dispatcher (autograd included)"},
    {"relu_", py_in_place<kRelu_, call_relu_>, METH_O, "relu_ext::relu_ on a tensor, in place; returns it"},
    {"relu_save_mask", py_out_of_place<kReluSaveMask, relu_save_mask_entry>, METH_O,
     "relu_ext::relu_mask's output where autograd records the call (the mask kept for the backward), else relu"},
    {"relu_save_mask_", py_in_place<kReluSaveMask_, call_relu_save_mask_>, METH_O,
     "relu_ext::relu_mask_ where autograd records the call, else relu_; in place, returns the input"},
    {"_set_fallbacks", py_set_fallbacks, METH_O,
     "what the entries call for tensor subclasses and modes: a tuple relu, relu_, relu_save_mask, relu_save_mask_"},
    {"_check_relu_input", py_check_input<check_relu_input>, METH_VARARGS,
     "the kernels' input check (tensor, op name)"},
    {"_check_relu_backward_inputs", py_check_relu_backward_inputs, METH_VARARGS,
     "the backward kernel's input check (grad_output, result)"},
    {"_check_relu_mask_input", py_check_input<check_relu_mask_input>, METH_VARARGS,
     "the mask ops' input check (tensor, op name)"},
    {"_check_mask_backward_inputs", py_check_mask_backward_inputs, METH_VARARGS,
     "relu_mask_backward's input check (grad_output, mask, number of result strides)"},
    {"_check_inplace", py_check_inplace, METH_O,
     "torch's errors for an in-place op on this tensor where autograd records it (a leaf that requires grad, ...)"},
    {"_set_wide_unsigned_supported", py_set_wide_unsigned_supported, METH_VARARGS,
     "whether uint16/uint32/uint64 are accepted by relu, relu_ and relu_backward (as the installed torch's ops)"},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace
}  // namespace relu_ext

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, relu_ext::methods};
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (PyModule_AddStringConstant(module, "torch_version", RELU_EXT_TORCH_VERSION) < 0 ||
      PyModule_AddStringConstant(module, "source_hash", RELU_EXT_SOURCE_HASH) < 0 ||
      PyModule_AddIntConstant(module, "with_cuda", RELU_EXT_WITH_CUDA) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
