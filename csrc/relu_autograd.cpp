// relu_ext: autograd for the ops, in C++ so that a training step pays no Python per call (a Python
// autograd.Function costs tens of microseconds per call here: see README). Registered for the Autograd key, so
// torch.ops.relu_ext.* are differentiable on every device, and double backward works because the backward is an op
// with its own autograd. relu_ext.ReLUFunction (Python) computes the same thing for users who want a Function.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

namespace relu_ext {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_relu(const at::Tensor& self) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu", "")
                             .typed<at::Tensor(const at::Tensor&)>();
  return op.call(self);
}

void call_relu_(const at::Tensor& self) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_", "").typed<void(const at::Tensor&)>();
  op.call(self);
}

at::Tensor call_relu_backward(const at::Tensor& grad_output, const at::Tensor& result) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op.call(grad_output, result);
}

// threshold_backward(grad, result, 0); its own gradient is relu_backward(grad, result) for grad_output and zero for
// result, as derivatives.yaml gives for threshold_backward.
struct ReluBackwardFunction : public torch::autograd::Function<ReluBackwardFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output, const at::Tensor& result) {
    ctx->save_for_backward({result});
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_relu_backward(grad_output, result);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor result = ctx->get_saved_variables()[0];
    return {call_relu_backward(grads[0], result), at::Tensor()};
  }
};

// relu saves its output, as torch's relu does: the backward needs result <= 0, not the input.
struct ReluFunction : public torch::autograd::Function<ReluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self) {
    at::Tensor result;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      result = call_relu(self);
    }
    ctx->save_for_backward({result});
    return result;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {call_relu_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

struct ReluInplaceFunction : public torch::autograd::Function<ReluInplaceFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      call_relu_(self);
    }
    ctx->mark_dirty({self});
    ctx->save_for_backward({self});
    return self;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {call_relu_backward(grads[0], ctx->get_saved_variables()[0])};
  }
};

// Without a graph to record, go straight to the kernel: apply() costs a context and a node even then.
bool records_grad(const at::Tensor& t) { return t.requires_grad() && at::GradMode::is_enabled(); }

at::Tensor relu_autograd(const at::Tensor& self) {
  if (!records_grad(self)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_relu(self);
  }
  return ReluFunction::apply(self);
}

void relu__autograd(const at::Tensor& self) {
  if (!records_grad(self)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_relu_(self);
  }
  // torch's checks and words, made before anything is written (autograd would make them only afterwards).
  TORCH_CHECK(!self.is_leaf(), "a leaf Variable that requires grad is being used in an in-place operation.");
  TORCH_CHECK(!(self.is_view() && self._base().is_leaf()),
              "a view of a leaf Variable that requires grad is being used in an in-place operation.");
  ReluInplaceFunction::apply(self);
}

at::Tensor relu_backward_autograd(const at::Tensor& grad_output, const at::Tensor& result) {
  if (!records_grad(grad_output) && !records_grad(result)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_relu_backward(grad_output, result);
  }
  return ReluBackwardFunction::apply(grad_output, result);
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, Autograd, m) {
  m.impl("relu", &relu_autograd);
  m.impl("relu_", &relu__autograd);
  m.impl("relu_backward", &relu_backward_autograd);
}

}  // namespace relu_ext
