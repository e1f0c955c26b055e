// relu_ext: autograd for the ops, in C++ and written the way torch's generated autograd code is (a Node per op,
// linked after the kernel runs below autograd), so that a training step pays no more than with torch.relu: a Python
// autograd.Function costs tens of microseconds per call here. Registered for the Autograd key, so torch.ops.relu_ext.*
// are differentiable on every device and under torch.func; double backward works because the backward is an op with
// its own node. relu_ext.ReLUFunction (Python) computes the same thing for users who want a Function.
#include <ATen/CachedTensorUtils.h>
#include <ATen/TensorSubclassLikeUtils.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>

#include "relu.h"

namespace relu_ext {
namespace {

using torch::autograd::variable_list;

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&)>& relu_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu", "")
                             .typed<at::Tensor(const at::Tensor&)>();
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

const c10::TypedOperatorHandle<void(const at::Tensor&, const at::Tensor&)>& relu_backward__op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("relu_ext::relu_backward_", "")
                             .typed<void(const at::Tensor&, const at::Tensor&)>();
  return op;
}

// Forward-mode AD (torch.func.jvp, jacfwd, torch.autograd.forward_ad), as torch's generated code does it for relu
// (derivatives.yaml: `result: auto_element_wise`): the output's tangent is the input's through the gradient's rule,
// relu_backward(tangent, result). Level 0, as in torch's generated code; torch.func maps its levels onto it.
constexpr uint64_t kForwardLevel = 0;

// Whether the backward may write the gradient over grad, the incoming gradient, instead of into a new tensor: when
// nothing else can see grad's memory, as torch's AccumulateGrad takes over a gradient nobody else holds. In a
// training step that saves an allocation and writes memory the previous layer's backward has just brought into the
// cache. Measured (the seed's SimpleModel, steps with and without it taking turns in one process): batch 65536
// 1.09-1.19x and 16384 0.99-1.07x faster, where a new gradient costs glibc fresh pages (12-950 faults a step without,
// 0-316 with); batch 4096, no faults either way, 0.86-1.01x (median 0.98 over 11 processes: even, within the noise).
// Values and strides are the same as relu_backward's; only the memory is reused.
// On the CPU only from kOverwriteMinBytes: measured again later (steps with it, without it and with nn.ReLU taking
// turns in one process, ratio nn.ReLU step / relu_ext step, median over 30 rounds, one figure per process): batch
// 4096 (a 320 KB gradient) 0.88-1.01 with it, median 0.98 over 14 processes, against 0.97-1.01, median 0.99, without;
// 16384 (1.3 MB) 0.82-1.14, median 0.94 over 6, against 0.93-1.04, median 1.00; 32768 (2.6 MB) 0.84-1.14, median
// 1.05 over 7, against 0.92-1.04, median 0.99; 65536 (5.2 MB) 1.09-1.32 against 1.01-1.09 over 7. Step times
// swung by up to 2x from one process to the next at 16384 and up, with glibc's page faults. CUDA: unmeasured, left on.
constexpr int64_t kOverwriteMinBytes = int64_t(2) << 20;
std::atomic<int64_t> overwrite_min_bytes{kOverwriteMinBytes};

bool may_overwrite(const at::Tensor& grad, const at::Tensor& result) {
  if (at::GradMode::is_enabled()) return false;  // create_graph: grad may be part of a graph
  // Only this node holds grad, and no other tensor (a view, a .detach()) shares its storage; but for the base of a
  // view made in this backward, held by nothing but the view (a Flatten after relu passes on a view of the next
  // layer's gradient).
  if (grad.use_count() != 1) return false;
  const c10::Storage& storage = grad.storage();
  const bool sole_view = grad.is_view() && grad._base().use_count() == 1;
  if (storage.use_count() != (sole_view ? 2 : 1)) return false;
  // And it spans all of that storage: a part of a bigger gradient (cat's backward passes on slices of one) would
  // keep the whole of it alive in the tensor passed on, which may become a leaf's .grad.
  if (grad.storage_offset() != 0 || storage.nbytes() != size_t(grad.numel()) * grad.itemsize()) return false;
  // Tensor subclasses, functorch wrappers, dispatch modes, sparse and meta tensors take relu_backward, unchanged.
  if (at::isTensorSubclassLike(grad) || at::isTensorSubclassLike(result)) return false;
  if (grad.is_cpu() && int64_t(grad.nbytes()) < overwrite_min_bytes.load(std::memory_order_relaxed)) return false;
  if (grad.requires_grad() || grad.is_inference() || at::caching::is_cached_tensor(grad)) return false;
  if (grad._fw_grad(kForwardLevel).defined() || result._fw_grad(kForwardLevel).defined()) return false;
  // Memory its allocator gave out, not borrowed (torch.from_numpy, from_blob, shared memory): the lender may read it.
  const c10::Allocator* allocator = storage.allocator();
  const c10::DeleterFnPtr deleter = storage.data_ptr().get_deleter();
  if (allocator == nullptr || deleter == nullptr || deleter != allocator->raw_deleter()) return false;
  return grad.scalar_type() == result.scalar_type() && grad.device() == result.device() &&
         grad.sizes() == result.sizes() && grad.strides() == elementwise_strides({&result, &grad});
}

// The nodes relu (kInputs = 1) and relu_backward (kInputs = 2) leave in the graph: plain autograd Nodes, as torch's
// own ReluBackward0 is. A torch::autograd::Function here cost ~5 us more per forward and backward (its context and
// checks), and torch.func refuses those. Both have the same gradient for their first input, relu_backward(grad,
// result) with result saved (relu saves its output, as torch's relu does: the gradient needs result <= 0, not the
// input), and none for relu_backward's result, as derivatives.yaml gives for the threshold backward. relu_backward
// being an op with this node is what makes double backward work.
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
    variable_list grad_inputs(kInputs);
    if (grads[0].defined() && should_compute_output(0)) {
      const at::Tensor result = result_.unpack(getptr());
      if (may_overwrite(grads[0], result)) {
        relu_backward__op().call(grads[0], result);
        // Nothing else sees this tensor or shares its version counter, so it may start afresh at 0, as the new
        // tensor torch's backward returns does: a leaf's .grad taken over from it then has torch's _version. A view
        // keeps the counter it shares with its base.
        if (!grads[0].is_view()) grads[0].unsafeGetTensorImpl()->set_version_counter(c10::VariableVersion(0));
        grad_inputs[0] = std::move(grads[0]);
      } else {
        grad_inputs[0] = relu_backward_op().call(grads[0], result);
      }
    }
    return grad_inputs;
  }
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

// Whether this call is recorded in a graph (needs a node).
bool records_grad(const at::Tensor& t) { return t.requires_grad() && at::GradMode::is_enabled(); }

// What torch's generated autograd code does: redispatch below autograd with the keys this call came with (no second
// full dispatch), then link the output to the node.
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
  // torch's own check, before anything is written: a leaf, a view of one, or a view whose history an in-place op
  // may not rewrite (made in no_grad, by a custom Function, or one of several views) raises torch's error.
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
  // Linear in grad_output; a tangent of result alone gives zero, as torch's formula for relu's backward has it.
  const at::Tensor& grad_output_t = grad_output._fw_grad(kForwardLevel);
  if (grad_output_t.defined() || result._fw_grad(kForwardLevel).defined()) {
    at::Tensor grad_input_t = grad_output_t.defined()
                                  ? relu_backward_op().call(grad_output_t, result._fw_primal(kForwardLevel))
                                  : at::zeros_like(grad_input);
    grad_input._set_fw_grad(grad_input_t, kForwardLevel, /*is_inplace_op=*/false);
  }
  return grad_input;
}

// In place over grad_output, it has no derivative of its own: for a gradient that is itself differentiated (double
// backward, forward mode) relu_backward is the op, and relu's node takes it in those cases.
void relu_backward__autograd(c10::DispatchKeySet ks, const at::Tensor& grad_output, const at::Tensor& result) {
  TORCH_CHECK(!records_grad(grad_output) && !records_grad(result) && !grad_output._fw_grad(kForwardLevel).defined() &&
                  !result._fw_grad(kForwardLevel).defined(),
              "relu_ext.relu_backward_ is not differentiable (it overwrites grad_output); call ",
              "relu_ext::relu_backward, which returns a new tensor and is differentiable, or call it under ",
              "torch.no_grad()");
  at::AutoDispatchBelowADInplaceOrView guard;
  relu_backward__op().redispatch(ks & c10::after_autograd_keyset, grad_output, result);
}

}  // namespace

void set_overwrite_min_bytes(int64_t bytes) { overwrite_min_bytes = bytes < 0 ? kOverwriteMinBytes : bytes; }

at::Tensor call_relu(const at::Tensor& self) { return relu_op().call(self); }

void call_relu_(const at::Tensor& self) { relu__op().call(self); }

TORCH_LIBRARY_IMPL(relu_ext, Autograd, m) {
  m.impl("relu", &relu_autograd);
  m.impl("relu_", &relu__autograd);
  m.impl("relu_backward", &relu_backward_autograd);
  m.impl("relu_backward_", &relu_backward__autograd);
}

}  // namespace relu_ext
