"""How the relu_ext ops leave a training script as ONNX. By default relu_ext traces to aten.relu under torch.export,
which both exporters turn into Relu; these cover the relu_ext op itself (relu_ext.config.opaque_under_compile)."""
import torch
import torch.onnx

# torch.onnx.export(dynamo=False) traces with TorchScript, which records relu_ext::relu itself.
torch.onnx.register_custom_op_symbolic("relu_ext::relu", lambda g, self: g.op("Relu", self), 1)


def onnx_translation_table():
    """For torch.onnx.export(..., dynamo=True, custom_translation_table=relu_ext.onnx_translation_table()) of a model
    whose exported program holds relu_ext.relu. (A decomposition in torch's global table would do it without an
    argument, but Inductor then refuses to call the op where the CI environment variable is set.)"""
    from onnxscript import opset18 as op

    def relu(self):
        return op.Relu(self)

    return {torch.ops.relu_ext.relu.default: relu}
