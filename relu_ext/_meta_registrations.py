"""Fake kernels (shapes, dtypes and strides without data, for FakeTensor, meta tensors, torch.compile and
torch.export) and vmap rules of the relu_ext ops. The checks are the C++ kernels' own (relu_ext._C); the strides are
those torch's own meta kernels give torch.relu and threshold_backward."""
import torch

from . import _C

_relu = torch.ops.relu_ext.relu.default
_relu_ = torch.ops.relu_ext.relu_.default
_relu_backward = torch.ops.relu_ext.relu_backward.default
_relu_mask = torch.ops.relu_ext.relu_mask.default
_relu_mask_ = torch.ops.relu_ext.relu_mask_.default
_relu_mask_backward = torch.ops.relu_ext.relu_mask_backward.default


@torch.library.register_fake("relu_ext::relu")
def _relu_fake(self):
    _C._check_relu_input(self, "relu")
    return torch.ops.aten.relu.default(self)


@torch.library.register_fake("relu_ext::relu_")
def _relu__fake(self):
    _C._check_relu_input(self, "relu_")
    return self


@torch.library.register_fake("relu_ext::relu_backward")
def _relu_backward_fake(grad_output, result):
    _C._check_relu_backward_inputs(grad_output, result)
    return torch.ops.aten.threshold_backward.default(grad_output, result, 0)


def _empty_mask(like):
    return like.new_empty(((like.numel() + 7) // 8,), dtype=torch.uint8)


@torch.library.register_fake("relu_ext::relu_mask")
def _relu_mask_fake(self):
    _C._check_relu_mask_input(self, "relu_mask")
    return torch.ops.aten.relu.default(self), _empty_mask(self)


@torch.library.register_fake("relu_ext::relu_mask_")
def _relu_mask__fake(self):
    _C._check_relu_mask_input(self, "relu_mask_")
    return _empty_mask(self)


@torch.library.register_fake("relu_ext::relu_mask_backward")
def _relu_mask_backward_fake(grad_output, mask, result_stride):
    _C._check_mask_backward_inputs(grad_output, mask, len(result_stride))
    result = torch.empty_strided(grad_output.shape, result_stride, dtype=grad_output.dtype, device=grad_output.device)
    return torch.ops.aten.threshold_backward.default(grad_output, result, 0)


# vmap: the ops are elementwise, so a batched tensor goes through whole, its batch dim where it is.
def _relu_vmap(info, in_dims, self):
    return _relu(self), in_dims[0]


def _relu__vmap(info, in_dims, self):
    return _relu_(self), in_dims[0]  # self itself: vmap gives back the batched input it came from


def _relu_backward_vmap(info, in_dims, grad_output, result):
    grad_dim, result_dim = in_dims
    if grad_dim is None and result_dim is None:
        return _relu_backward(grad_output, result), None
    grad_output = _batch_dim_first(grad_output, grad_dim, info.batch_size)
    result = _batch_dim_first(result, result_dim, info.batch_size)
    return _relu_backward(grad_output, result), 0


def _batch_dim_first(t, dim, size):
    return t.expand(size, *t.shape) if dim is None else t.movedim(dim, 0)


# The mask ops sample by sample: a mask's bits follow its sample's layout, which a batch-wide call would not keep.
def _relu_mask_vmap(info, in_dims, self):
    x = self.movedim(in_dims[0], 0).contiguous()
    outs, masks = zip(*(_relu_mask(x[b]) for b in range(info.batch_size)))
    return (torch.stack(outs), torch.stack(masks)), (0, 0)


def _relu_mask__vmap(info, in_dims, self):
    x = self.movedim(in_dims[0], 0)
    return torch.stack([_relu_mask_(x[b]) for b in range(info.batch_size)]), 0


def _relu_mask_backward_vmap(info, in_dims, grad_output, mask, result_stride):
    grad_dim, mask_dim = in_dims[0], in_dims[1]
    if grad_dim is None and mask_dim is None:
        return _relu_mask_backward(grad_output, mask, result_stride), None
    def sample(t, dim, b):
        return t if dim is None else t.select(dim, b)
    return torch.stack([_relu_mask_backward(sample(grad_output, grad_dim, b), sample(mask, mask_dim, b), result_stride)
                        for b in range(info.batch_size)]), 0


torch.library.register_vmap("relu_ext::relu", _relu_vmap)
torch.library.register_vmap("relu_ext::relu_", _relu__vmap)
torch.library.register_vmap("relu_ext::relu_backward", _relu_backward_vmap)
torch.library.register_vmap("relu_ext::relu_mask", _relu_mask_vmap)
torch.library.register_vmap("relu_ext::relu_mask_", _relu_mask__vmap)
torch.library.register_vmap("relu_ext::relu_mask_backward", _relu_mask_backward_vmap)
