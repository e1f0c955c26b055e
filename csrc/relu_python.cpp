// relu_ext._C, the Python module: `import relu_ext._C` loads this library and with it the op registrations. It
// carries what the build knew (relu_ext/__init__.py checks it against the torch it runs with and the sources beside
// it) and the entries relu_ext.relu / relu_ call outside torch.compile: one C call into the dispatcher, as torch.relu's
// own binding is. Through torch.ops (an OpOverload) the same call costs ~0.4 us more: the boxed, schema-driven
// argument parsing, a quarter of torch.relu's whole time at 2^12 elements.
#include <ATen/PythonTorchFunctionTLS.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include "relu.h"

namespace relu_ext {
namespace {

// The ops' OpOverloads (set by relu_ext/ops.py), called for anything but a plain tensor outside a torch function
// mode: a tensor subclass or a mode gets its __torch_function__ exactly as through torch.ops.
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

// The test hooks' setters: one int argument, handed to `set`.
template <void (*set)(int64_t)>
PyObject* py_set_bytes(PyObject* /*module*/, PyObject* arg) {
  const long long bytes = PyLong_AsLongLong(arg);
  if (bytes == -1 && PyErr_Occurred()) return nullptr;
  set(bytes);
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"relu", py_relu, METH_O, "relu_ext::relu on a tensor, through the dispatcher (autograd included)"},
    {"relu_", py_relu_, METH_O, "relu_ext::relu_ on a tensor, in place; returns None"},
    {"_set_stream_min_bytes", py_set_bytes<cpu::set_stream_min_bytes>, METH_O,
     "for tests: CPU calls moving more bytes than this take the past-the-cache paths (non-temporal stores out of "
     "place, interleaved halves in place; -1: the last-level cache size)"},
    {"_set_overwrite_min_bytes", py_set_bytes<set_overwrite_min_bytes>, METH_O,
     "for tests: relu's backward on the CPU writes over the incoming gradient from this many bytes (-1: the default)"},
    {"_set_overloads", py_set_overloads, METH_VARARGS, "the OpOverloads to call for tensor subclasses and modes"},
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
