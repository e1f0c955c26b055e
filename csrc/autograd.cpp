// Autograd for the ops, written as torch's generated autograd code is: the Autograd kernel redispatches below autograd
// and links the output to a Node, so a call costs about what torch.relu's does (a Python autograd.Function costs far
// more: docs/PERFORMANCE.md). Registered for the Autograd key, so torch.ops.relu_ext.* are differentiable on every
// device and under torch.func; the backward ops have Nodes too, so double backward works.
#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/library.h>

#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "relu.h"

namespace relu_ext {
namespace {

using torch::autograd::variable_list;


const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&)>& relu_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu", "").typed<at::Tensor(const at::Tensor&)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&)>& relu__op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_", "").typed<at::Tensor(const at::Tensor&)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&)>& relu_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu_backward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op;
}

using MaskFn = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&);
const c10::TypedOperatorHandle<MaskFn>& relu_mask_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_mask", "").typed<MaskFn>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&)>& relu_mask__op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_mask_", "").typed<at::Tensor(const at::Tensor&)>();
  return op;
}

using MaskBackwardFn = at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef);
const c10::TypedOperatorHandle<MaskBackwardFn>& relu_mask_backward_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("relu_ext::relu_mask_backward", "").typed<MaskBackwardFn>();
  return op;
}

// Forward-mode AD at level 0, as torch's generated code does it (torch.func maps its levels onto it).
constexpr uint64_t kForwardLevel = 0;

// torch >= 2.12 holds autograd nodes in c10::intrusive_ptr, older releases in std::shared_ptr.
template <typename NodeT>
auto make_node() {
  if constexpr (std::is_base_of_v<c10::intrusive_ptr_target, NodeT>) {
    return c10::make_intrusive<NodeT>();
  } else {
    return std::make_shared<NodeT>();
  }
}

// The Nodes, as derivatives.yaml gives them for relu and the threshold backward:
// - relu's (kInputs = 1): relu_backward(grad, result), with result (relu's output) saved;
// - relu_backward's (kInputs = 2): relu_backward(grad, result) for grad_output, zeros for result;
// - kMask: the same with relu_mask_backward(grad, mask, result_stride), the mask and the result's strides saved.
//   relu_mask_backward has no result input, so its second edge is the result's gradient edge where one is known.
enum class Saved { kPlain, kMask };

template <int kInputs, Saved kSaved>
struct ReluExtNode : public torch::autograd::Node {
  static constexpr bool kMask = kSaved == Saved::kMask;
  torch::autograd::SavedVariable saved_;  // the result, or the mask
  std::vector<c10::SymInt> result_stride_;  // kMask only

  std::string name() const override {
    return std::string(kMask ? "ReluExtMask" : "ReluExt") + (kInputs == 1 ? "Backward" : "BackwardBackward");
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    saved_.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool needed1 = kInputs == 2 && should_compute_output(1);
    if constexpr (kMask) {
      if (at::GradMode::is_enabled() && grads[0].defined()) return recorded_mask_gradients(grads, needed1);
    }
    return gradients(grads, saved_.unpack(getptr()), result_stride_, should_compute_output(0), needed1);
  }

  // With create_graph, the mask gradient is recorded as torch records its threshold backward: depending on
  // grad_output and, with a zero gradient, on the result (this Node's output 0, or the result edge it was given).
  variable_list recorded_mask_gradients(const variable_list& grads, bool needed1) {
    const torch::autograd::Edge result_edge = kInputs == 1 ? torch::autograd::Edge(getptr(), 0) : next_edge(1);
    if (!grads[0].requires_grad() && !result_edge.is_valid()) {
      return gradients(grads, saved_.unpack(getptr()), result_stride_, should_compute_output(0), needed1);
    }
    const at::Tensor mask = saved_.unpack(getptr());
    at::Tensor grad_input;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      grad_input = relu_mask_backward_op().call(grads[0], mask, result_stride_);
    }
    auto node = make_node<ReluExtNode<2, Saved::kMask>>();
    node->set_next_edges({torch::autograd::collect_next_edges(grads[0])[0], result_edge});
    torch::autograd::set_history(grad_input, node);
    node->saved_ = torch::autograd::SavedVariable(mask, /*is_output=*/false);
    node->result_stride_ = result_stride_;
    const at::Tensor& grad_t = grads[0]._fw_grad(kForwardLevel);  // forward over reverse
    if (grad_t.defined()) {
      grad_input._set_fw_grad(relu_mask_backward_op().call(grad_t, mask, result_stride_), kForwardLevel,
                              /*is_inplace_op=*/false);
    }
    variable_list grad_inputs(kInputs);
    if (should_compute_output(0)) grad_inputs[0] = grad_input;
    if (kInputs == 2 && needed1) grad_inputs[1] = at::zeros_like(grads[0]);
    return grad_inputs;
  }

  // needed0 / needed1: whether the first and second inputs' gradients are wanted.
  static variable_list gradients(const variable_list& grads, const at::Tensor& saved,
                                 const std::vector<c10::SymInt>& result_stride, bool needed0, bool needed1) {
    variable_list grad_inputs(kInputs);
    if (!grads[0].defined()) return grad_inputs;
    if (needed0) {
      grad_inputs[0] = kMask ? relu_mask_backward_op().call(grads[0], saved, result_stride)
                             : relu_backward_op().call(grads[0], saved);
    }
    if (kInputs == 2 && needed1) grad_inputs[1] = at::zeros_like(grads[0]);
    return grad_inputs;
  }

  // Compiled autograd: the saved tensor and strides are the Node's only state.
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(saved_, /*is_output=*/kInputs == 1 && !kMask);
    args.collect(result_stride_);
  }

  // Compiled autograd calls a Node's backward as a function of its packed state (as torch's own
  // generated Nodes do), so that the graph it traces holds the ops that function runs.
  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    using namespace torch::dynamo::autograd;
    saved.before(saved_);
    saved.before(result_stride_);
    std::vector<bool> needed(kInputs);
    for (int i = 0; i < kInputs; ++i) needed[i] = task_should_compute_output(i);
    PackedArgs packed;
    packed.pack(needed);
    packed.pack(saved_.unpack(getptr()));
    packed.pack(result_stride_);
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
    saved.after(saved_);
    saved.after(result_stride_);
    return grad_inputs;
  }

  static variable_list apply_packed(const variable_list& grads, const std::vector<c10::IValue>& args) {
    torch::dynamo::autograd::PackedArgs packed(args);
    const auto needed = packed.unpack<std::vector<bool>>();
    const auto saved = packed.unpack<at::Tensor>();
    const auto result_stride = packed.unpack<std::vector<c10::SymInt>>();
    return gradients(grads, saved, result_stride, needed[0], kInputs == 2 && needed[1]);
  }
};
using ReluNode = ReluExtNode<1, Saved::kPlain>;
using ReluBackwardNode = ReluExtNode<2, Saved::kPlain>;
using MaskNode = ReluExtNode<1, Saved::kMask>;
using MaskBackwardNode = ReluExtNode<2, Saved::kMask>;

bool records_grad(const at::Tensor& t) { return t.requires_grad() && at::GradMode::is_enabled(); }

at::Tensor relu_autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  at::Tensor result;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    result = relu_op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  if (records_grad(self)) {
    auto node = make_node<ReluNode>();
    node->set_next_edges(torch::autograd::collect_next_edges(self));
    torch::autograd::set_history(result, node);
    node->saved_ = torch::autograd::SavedVariable(result, /*is_output=*/true);
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

at::Tensor relu__autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  if (!records_grad(self)) {
    {
      at::AutoDispatchBelowAutograd guard;
      relu__op().redispatch(ks & c10::after_autograd_keyset, self);
    }
    relu__tangent(self);
    return self;
  }
  // torch's own check and error, before anything is written: a leaf that requires grad, a view of one, or a view
  // whose history an in-place op may not rewrite.
  torch::autograd::check_inplace(self, /*requires_grad=*/true);
  auto node = make_node<ReluNode>();
  node->set_next_edges(torch::autograd::collect_next_edges(self));
  {
    at::AutoDispatchBelowAutograd guard;  // ADInplaceOrView still runs: it bumps the version
    relu__op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  // self now comes out of the node (through a CopySlices when it is a view)
  node->add_input_metadata(self);
  torch::autograd::impl::rebase_history(self, {node, 0});
  node->saved_ = torch::autograd::SavedVariable(self, /*is_output=*/true, /*is_inplace_on_view=*/self.is_view());
  relu__tangent(self);
  return self;
}

at::Tensor relu_backward_autograd(c10::DispatchKeySet ks, const at::Tensor& grad_output, const at::Tensor& result) {
  at::Tensor grad_input;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    grad_input = relu_backward_op().redispatch(ks & c10::after_autograd_keyset, grad_output, result);
  }
  if (records_grad(grad_output) || records_grad(result)) {
    auto node = make_node<ReluBackwardNode>();
    node->set_next_edges(torch::autograd::collect_next_edges(grad_output, result));
    torch::autograd::set_history(grad_input, node);
    node->saved_ = torch::autograd::SavedVariable(result, /*is_output=*/false);
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

// The mask forms: the same as above with the mask and the result's strides saved in place of the result.
std::tuple<at::Tensor, at::Tensor> relu_mask_autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  at::Tensor result, mask;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(result, mask) = relu_mask_op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  if (records_grad(self)) {
    auto node = make_node<MaskNode>();
    node->set_next_edges(torch::autograd::collect_next_edges(self));
    torch::autograd::set_history(result, node);
    node->saved_ = torch::autograd::SavedVariable(mask, /*is_output=*/false);  // no gradient: no cycle to avoid
    node->result_stride_ = result.sym_strides().vec();
  }
  const at::Tensor& self_t = self._fw_grad(kForwardLevel);
  if (self_t.defined()) {
    result._set_fw_grad(relu_mask_backward_op().call(self_t, mask, result.sym_strides()), kForwardLevel,
                        /*is_inplace_op=*/false);
  }
  return {result, mask};
}

void relu_mask__tangent(const at::Tensor& self, const at::Tensor& mask) {
  at::Tensor self_t = self._fw_grad(kForwardLevel);
  if (self_t.defined()) self_t.copy_(relu_mask_backward_op().call(self_t, mask, self.sym_strides()));
}

at::Tensor relu_mask__autograd(c10::DispatchKeySet ks, const at::Tensor& self) {
  at::Tensor mask;
  if (!records_grad(self)) {
    {
      at::AutoDispatchBelowAutograd guard;
      mask = relu_mask__op().redispatch(ks & c10::after_autograd_keyset, self);
    }
    relu_mask__tangent(self, mask);
    return mask;
  }
  torch::autograd::check_inplace(self, /*requires_grad=*/true);
  auto node = make_node<MaskNode>();
  node->set_next_edges(torch::autograd::collect_next_edges(self));
  {
    at::AutoDispatchBelowAutograd guard;
    mask = relu_mask__op().redispatch(ks & c10::after_autograd_keyset, self);
  }
  node->add_input_metadata(self);
  torch::autograd::impl::rebase_history(self, {node, 0});
  node->saved_ = torch::autograd::SavedVariable(mask, /*is_output=*/false);
  node->result_stride_ = self.sym_strides().vec();
  relu_mask__tangent(self, mask);
  return mask;
}

at::Tensor relu_mask_backward_autograd(c10::DispatchKeySet ks, const at::Tensor& grad_output, const at::Tensor& mask,
                                       c10::SymIntArrayRef result_stride) {
  at::Tensor grad_input;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    grad_input = relu_mask_backward_op().redispatch(ks & c10::after_autograd_keyset, grad_output, mask, result_stride);
  }
  if (records_grad(grad_output)) {  // linear in grad_output, with the same mask; no result edge known here
    auto node = make_node<MaskBackwardNode>();
    node->set_next_edges({torch::autograd::collect_next_edges(grad_output)[0], torch::autograd::Edge()});
    torch::autograd::set_history(grad_input, node);
    node->saved_ = torch::autograd::SavedVariable(mask, /*is_output=*/false);
    node->result_stride_ = result_stride.vec();
  }
  const at::Tensor& grad_output_t = grad_output._fw_grad(kForwardLevel);
  if (grad_output_t.defined()) {
    grad_input._set_fw_grad(relu_mask_backward_op().call(grad_output_t, mask, result_stride), kForwardLevel,
                            /*is_inplace_op=*/false);
  }
  return grad_input;
}

// The version counter, as torch's in-place ops keep it: bumped by the ADInplaceOrView kernel, after the write, so
// that whatever runs below it (a dispatch mode such as selective checkpointing's cache) sees the version before
// the write. relu_mask_ returns the mask, not self: the mask is bumped too, so that a cache of this call's outputs
// also sees that the call wrote (torch.utils.checkpoint's SAC then raises as it does for aten::relu_).
at::Tensor relu__inplace_or_view(c10::DispatchKeySet ks, const at::Tensor& self) {
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    relu__op().redispatch(ks & c10::after_ADInplaceOrView_keyset, self);
  }
  torch::autograd::increment_version(self);
  return self;
}

at::Tensor relu_mask__inplace_or_view(c10::DispatchKeySet ks, const at::Tensor& self) {
  at::Tensor mask;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    mask = relu_mask__op().redispatch(ks & c10::after_ADInplaceOrView_keyset, self);
  }
  torch::autograd::increment_version(self);
  torch::autograd::increment_version(mask);
  return mask;
}

// Functionalization (torch.compile, torch.export, torch.func.functionalize), as torch's generated code does it for
// aten::relu_: the functional op's result replaces self's value. Traced graphs then hold relu_ext::relu.
at::Tensor relu__functionalize(const at::Tensor& self) {
  namespace impl = at::functionalization::impl;
  if (!impl::isFunctionalTensor(self)) {
    at::AutoDispatchSkipFunctionalize guard;
    return relu__op().call(self);
  }
  impl::sync(self);
  const at::Tensor inner = impl::from_functional_tensor(self);
  check_relu_input(inner, "relu_");
  check_no_internal_overlap(inner);
  at::Tensor out;
  {
    at::AutoDispatchSkipFunctionalize guard;
    out = relu_op().call(inner);
  }
  impl::replace_(self, out);
  impl::commit_update(self);
  impl::sync(self);
  return self;
}

}  // namespace

at::Tensor call_relu(const at::Tensor& self) { return relu_op().call(self); }

void check_inplace_allowed(const at::Tensor& self) { torch::autograd::check_inplace(self, records_grad(self)); }

void call_relu_(const at::Tensor& self) { relu__op().call(self); }

at::Tensor call_relu_save_mask(const at::Tensor& self) {
  return records_grad(self) ? std::get<0>(relu_mask_op().call(self)) : relu_op().call(self);
}

void call_relu_save_mask_(const at::Tensor& self) {
  if (records_grad(self)) {
    relu_mask__op().call(self);
  } else {
    relu__op().call(self);
  }
}

TORCH_LIBRARY_IMPL(relu_ext, ADInplaceOrView, m) {
  m.impl("relu_", &relu__inplace_or_view);
  m.impl("relu_mask_", &relu_mask__inplace_or_view);
}

TORCH_LIBRARY_IMPL(relu_ext, Functionalize, m) { m.impl("relu_", &relu__functionalize); }

TORCH_LIBRARY_IMPL(relu_ext, Autograd, m) {
  m.impl("relu", &relu_autograd);
  m.impl("relu_", &relu__autograd);
  m.impl("relu_backward", &relu_backward_autograd);
  m.impl("relu_mask", &relu_mask_autograd);
  m.impl("relu_mask_", &relu_mask__autograd);
  m.impl("relu_mask_backward", &relu_mask_backward_autograd);
}

}  // namespace relu_ext
