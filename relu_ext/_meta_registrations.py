"""Fake kernels (shapes, dtypes and strides without data, for FakeTensor, meta tensors, torch.compile and
torch.export) and vmap rules of the relu_ext ops. The checks are the C++ kernels' own (relu_ext._C); the strides are
those torch's own meta kernels give torch.relu and threshold_backward."""
import torch

from . import _C

_relu = torch.ops.relu_ext.relu.default
_relu_ = torch.ops.relu_ext.relu_.default
_relu_backward = torch.ops.relu_ext.relu_backward.default


@torch.library.register_fake("relu_ext::relu")
def _relu_fake(self):
    _C._check_relu_input(self, "relu")
    return torch.ops.aten.relu.default(self)


@torch.library.register_fake("relu_ext::relu_")
def _relu__fake(self):
    _C._check_relu_input(self, "relu_")


@torch.library.register_fake("relu_ext::relu_backward")
def _relu_backward_fake(grad_output, result):
    _C._check_relu_backward_inputs(grad_output, result)
    return torch.ops.aten.threshold_backward.default(grad_output, result, 0)


# vmap: the ops are elementwise, so a batched tensor goes through whole, its batch dim where it is.
def _relu_vmap(info, in_dims, self):
    return _relu(self), in_dims[0]


def _relu__vmap(info, in_dims, self):
    _relu_(self)
    return None, None


def _relu_backward_vmap(info, in_dims, grad_output, result):
    grad_dim, result_dim = in_dims
    if grad_dim is None and result_dim is None:
        return _relu_backward(grad_output, result), None
    grad_output = _batch_dim_first(grad_output, grad_dim, info.batch_size)
    result = _batch_dim_first(result, result_dim, info.batch_size)
    return _relu_backward(grad_output, result), 0


def _batch_dim_first(t, dim, size):
    return t.expand(size, *t.shape) if dim is None else t.movedim(dim, 0)


torch.library.register_vmap("relu_ext::relu", _relu_vmap)
torch.library.register_vmap("relu_ext::relu_", _relu__vmap)
torch.library.register_vmap("relu_ext::relu_backward", _relu_backward_vmap)
