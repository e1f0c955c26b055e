// Autograd for the ops, written as torch's generated autograd code is: the Autograd kernel redispatches below autograd
// and links the output to a Node, so a call costs about what torch.relu's does (a Python autograd.Function costs far
// more: docs/PERFORMANCE.md). Registered for the Autograd key, so torch.ops.relu_ext.* are differentiable on every
// device and under torch.func; relu_backward has a Node too, so double backward works.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/library.h>
#include <torch/version.h>

#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "relu.h"

namespace relu_ext {
namespace {

using torch::autograd::variable_list;


const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&)>& relu_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu", "").typed<at::Tensor(const at::Tensor&)>();
  return op;
}

const c10::TypedOperatorHandle<void(const at::Tensor&)>& relu__op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_", "").typed<void(const at::Tensor&)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&)>& relu_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op;
}

// Forward-mode AD at level 0, as torch's generated code does it (torch.func maps its levels onto it).
constexpr uint64_t kForwardLevel = 0;

// The Nodes of relu (kInputs = 1) and relu_backward (kInputs = 2), as derivatives.yaml gives them for relu and the
// threshold backward: relu's gradient is relu_backward(grad, result), with result (relu's output) saved;
// relu_backward's is relu_backward(grad, result) for grad_output and zeros for result.
template <int kInputs>
struct ReluExtNode : public torch::autograd::Node {
  torch::autograd::SavedVariable result_;

  std::string name() const override { return kInputs == 1 ? "ReluExtBackward" : "ReluExtBackwardBackward"; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    result_.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool needed1 = kInputs == 2 && should_compute_output(1);
    return gradients(grads, result_.unpack(getptr()), should_compute_output(0), needed1);
  }

  // needed0 / needed1: whether grad_output's and result's gradients are wanted.
  static variable_list gradients(const variable_list& grads, const at::Tensor& result, bool needed0, bool needed1) {
    variable_list grad_inputs(kInputs);
    if (!grads[0].defined()) return grad_inputs;
    if (needed0) grad_inputs[0] = relu_backward_op().call(grads[0], result);
    if (kInputs == 2 && needed1) grad_inputs[1] = at::zeros_like(grads[0]);
    return grad_inputs;
  }

  // Compiled autograd: the saved output is the Node's only state.
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 7
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(result_, /*is_output=*/kInputs == 1);
  }

  // From torch 2.7 compiled autograd calls a Node's backward as a function of its packed state (as torch's own
  // generated Nodes do), so that the graph it traces holds the ops that function runs.
  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    using namespace torch::dynamo::autograd;
    saved.before(result_);
    std::vector<bool> needed(kInputs);
    for (int i = 0; i < kInputs; ++i) needed[i] = task_should_compute_output(i);
    PackedArgs packed;
    packed.pack(needed);
    packed.pack(result_.unpack(getptr()));
    std::vector<at::TypePtr> schema;
    for (const c10::IValue& value : packed.vec()) {
      schema.emplace_back(value.isTensor() ? at::TensorType::get() : value.type());
    }
    const auto& py = getPyCompilerInterface();
    // Bound once per process under a name of its own, as torch's generated Nodes are.
    static const std::string fn =
        py->bind_function(saved.get_py_compiler(), "relu_ext_" + name(), &apply_packed, schema);
    const auto metadata = IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
        get_input_metadata(next_edges()));
    variable_list grad_inputs = py->call_function(saved.get_py_compiler(), "apply_functional", fn, grads,
                                                  packed.vec(), metadata);
    saved.after(result_);
    return grad_inputs;
  }

  static variable_list apply_packed(const variable_list& grads, const std::vector<c10::IValue>& args) {
    torch::dynamo::autograd::PackedArgs packed(args);
    const auto needed = packed.unpack<std::vector<bool>>();
    const auto result = packed.unpack<at::Tensor>();
    return gradients(grads, result, needed[0], kInputs == 2 && needed[1]);
  }
#else
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) override {
    args.collect(result_, /*is_output=*/kInputs == 1);
  }

  // Before torch 2.7 compiled autograd traces apply() itself, on its own stand-ins for the saved output.
  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    saved.before(result_);
    variable_list grad_inputs = apply(variable_list(grads));
    saved.after(result_);
    return grad_inputs;
  }
#endif
};

// torch >= 2.12 holds autograd nodes in c10::intrusive_ptr, older releases in std::shared_ptr.
template <typename NodeT>
auto make_node() {
  if constexpr (std::is_base_of_v<c10::intrusive_ptr_target, NodeT>) {
    return c10::make_intrusive<NodeT>();
  } else {
    return std::make_shared<NodeT>();
  }
}

bool records_grad(const at::Tensor& t) { return t.requires_grad() && at::GradMode::is_enabled(); }

at::Tensor relu_autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  at::Tensor result;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    result = relu_op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  if (records_grad(self)) {
    auto node = make_node<ReluExtNode<1>>();
    node->set_next_edges(torch::autograd::collect_next_edges(self));
    torch::autograd::set_history(result, node);
    node->result_ = torch::autograd::SavedVariable(result, /*is_output=*/true);
  }
  // Forward mode (derivatives.yaml: `result: auto_element_wise`): the tangent through the gradient's rule.
  const at::Tensor& self_t = self._fw_grad(kForwardLevel);
  if (self_t.defined()) {
    result._set_fw_grad(relu_backward_op().call(self_t, result), kForwardLevel, /*is_inplace_op=*/false);
  }
  return result;
}

// In place, the tangent is updated in place too (a view's is a view of its base's), from the primal's new values.
void relu__tangent(const at::Tensor& self) {
  at::Tensor self_t = self._fw_grad(kForwardLevel);
  if (self_t.defined()) self_t.copy_(relu_backward_op().call(self_t, self._fw_primal(kForwardLevel)));
}

void relu__autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  if (!records_grad(self)) {
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      relu__op().redispatch(ks & c10::after_autograd_keyset, self);
    }
    return relu__tangent(self);
  }
  // torch's own check and error, before anything is written: a leaf that requires grad, a view of one, or a view
  // whose history an in-place op may not rewrite.
  torch::autograd::check_inplace(self, /*requires_grad=*/true);
  auto node = make_node<ReluExtNode<1>>();
  node->set_next_edges(torch::autograd::collect_next_edges(self));
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    relu__op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  // self now comes out of the node (through a CopySlices when it is a view)
  node->add_input_metadata(self);
  torch::autograd::impl::rebase_history(self, {node, 0});
  node->result_ = torch::autograd::SavedVariable(self, /*is_output=*/true, /*is_inplace_on_view=*/self.is_view());
  relu__tangent(self);
}

at::Tensor relu_backward_autograd(c10::DispatchKeySet ks, const at::Tensor& grad_output, const at::Tensor& result) {
  at::Tensor grad_input;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    grad_input = relu_backward_op().redispatch(ks & c10::after_autograd_keyset, grad_output, result);
  }
  if (records_grad(grad_output) || records_grad(result)) {
    auto node = make_node<ReluExtNode<2>>();
    node->set_next_edges(torch::autograd::collect_next_edges(grad_output, result));
    torch::autograd::set_history(grad_input, node);
    node->result_ = torch::autograd::SavedVariable(result, /*is_output=*/false);
  }
  // Linear in grad_output; a tangent of result alone gives zero, as torch's formula has it.
  const at::Tensor& grad_output_t = grad_output._fw_grad(kForwardLevel);
  if (grad_output_t.defined() || result._fw_grad(kForwardLevel).defined()) {
    at::Tensor grad_input_t = grad_output_t.defined()
                                  ? relu_backward_op().call(grad_output_t, result._fw_primal(kForwardLevel))
                                  : at::zeros_like(grad_input);
    grad_input._set_fw_grad(grad_input_t, kForwardLevel, /*is_inplace_op=*/false);
  }
  return grad_input;
}

}  // namespace

at::Tensor call_relu(const at::Tensor& self) { return relu_op().call(self); }

void call_relu_(const at::Tensor& self) { relu__op().call(self); }

TORCH_LIBRARY_IMPL(relu_ext, Autograd, m) {
  m.impl("relu", &relu_autograd);
  m.impl("relu_", &relu__autograd);
  m.impl("relu_backward", &relu_backward_autograd);
}

}  // namespace relu_ext
