"""How the relu_ext ops leave a training script: ONNX (both exporters) turns them into a plain Relu."""
import torch
import torch.onnx

_relu = torch.ops.relu_ext.relu.default
_relu_backward = torch.ops.relu_ext.relu_backward.default


# torch.onnx.export(dynamo=True) decomposes ops it has no ONNX function for with torch's decomposition table: the
# op becomes aten.relu, which it exports as Relu. (torch.export's own run_decompositions() keeps the op.)
@torch._decomp.register_decomposition(_relu)
def _relu_decomposition(self):
    return torch.relu(self)


@torch._decomp.register_decomposition(_relu_backward)
def _relu_backward_decomposition(grad_output, result):
    return torch.ops.aten.threshold_backward(grad_output, result, 0)


# torch.onnx.export(dynamo=False) traces with TorchScript, which records relu_ext::relu itself.
torch.onnx.register_custom_op_symbolic("relu_ext::relu", lambda g, self: g.op("Relu", self), 1)
