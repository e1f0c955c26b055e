// relu_ext._C, the Python module: importing it loads this library and with it the op registrations. It carries what
// the build knew (relu_ext/_loader.py checks it) and the entries relu_ext.relu and relu_ call outside torch.compile:
// one C call into the dispatcher, as torch.relu's own binding is, where calling the OpOverload parses its arguments
// from the schema in Python (docs/PERFORMANCE.md has the gain on small tensors).
#include <ATen/PythonTorchFunctionTLS.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include "relu.h"

namespace relu_ext {
namespace {

// The ops' OpOverloads (set by relu_ext/functional.py), called for anything but a plain tensor outside a torch
// function mode, so that a tensor subclass or a mode sees the call exactly as through torch.ops.
PyObject* relu_overload = nullptr;
PyObject* relu__overload = nullptr;

bool plain_tensor(PyObject* obj) { return THPVariable_CheckExact(obj) && !at::impl::torch_function_mode_enabled(); }

PyObject* call_overload(PyObject* overload, PyObject* arg) {
  if (overload == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "relu_ext._C: import relu_ext (not relu_ext._C alone) before calling it");
    return nullptr;
  }
  return PyObject_CallOneArg(overload, arg);
}

PyObject* py_relu(PyObject* /*module*/, PyObject* arg) {
  HANDLE_TH_ERRORS
  if (!plain_tensor(arg)) return call_overload(relu_overload, arg);
  const at::Tensor& self = THPVariable_Unpack(arg);
  at::Tensor out;
  {
    pybind11::gil_scoped_release no_gil;  // as torch's bindings do: other Python threads run meanwhile
    out = call_relu(self);
  }
  return THPVariable_Wrap(std::move(out));
  END_HANDLE_TH_ERRORS
}

PyObject* py_relu_(PyObject* /*module*/, PyObject* arg) {
  HANDLE_TH_ERRORS
  if (!plain_tensor(arg)) return call_overload(relu__overload, arg);
  const at::Tensor& self = THPVariable_Unpack(arg);
  {
    pybind11::gil_scoped_release no_gil;
    call_relu_(self);
  }
  Py_RETURN_NONE;
  END_HANDLE_TH_ERRORS
}

PyObject* py_set_overloads(PyObject* /*module*/, PyObject* args) {
  PyObject *relu, *relu_;
  if (!PyArg_ParseTuple(args, "OO", &relu, &relu_)) return nullptr;
  Py_INCREF(relu);
  Py_INCREF(relu_);
  Py_XSETREF(relu_overload, relu);
  Py_XSETREF(relu__overload, relu_);
  Py_RETURN_NONE;
}

// The fake kernels' checks: the same code, and so the same errors, as the real kernels'.
PyObject* py_check_relu_input(PyObject* /*module*/, PyObject* args) {
  HANDLE_TH_ERRORS
  PyObject* tensor;
  const char* op;
  if (!PyArg_ParseTuple(args, "Os", &tensor, &op)) return nullptr;
  check_relu_input(THPVariable_Unpack(tensor), op);
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

PyObject* py_set_wide_unsigned_supported(PyObject* /*module*/, PyObject* args) {
  int forward, backward;
  if (!PyArg_ParseTuple(args, "pp", &forward, &backward)) return nullptr;
  set_wide_unsigned_supported(forward, backward);
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"relu", py_relu, METH_O, "relu_ext::relu on a tensor, through the dispatcher (autograd included)"},
    {"relu_", py_relu_, METH_O, "relu_ext::relu_ on a tensor, in place; returns None"},
    {"_set_overloads", py_set_overloads, METH_VARARGS, "the OpOverloads to call for tensor subclasses and modes"},
    {"_check_relu_input", py_check_relu_input, METH_VARARGS, "the kernels' input check (tensor, op name)"},
    {"_check_relu_backward_inputs", py_check_relu_backward_inputs, METH_VARARGS,
     "the backward kernel's input check (grad_output, result)"},
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
