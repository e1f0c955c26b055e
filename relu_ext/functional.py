"""The functional API (relu, relu_, as torch.nn.functional) and ReLUFunction, the same computation as a Python
autograd.Function. relu and relu_ are differentiable through the ops' own C++ autograd (csrc/autograd.cpp)."""
import sys

import torch

from . import WITH_CUDA, _C, config

_relu = torch.ops.relu_ext.relu.default
_relu_ = torch.ops.relu_ext.relu_.default
_relu_backward = torch.ops.relu_ext.relu_backward.default
_relu_mask = torch.ops.relu_ext.relu_mask.default
_relu_mask_ = torch.ops.relu_ext.relu_mask_.default


def _relu_save_mask(input):
    """relu that keeps a 1-bit mask for the backward where autograd records it (the mask op), else plain relu."""
    if isinstance(input, torch.Tensor) and input.requires_grad and torch.is_grad_enabled():
        if _is_dtensor(input):
            return _dtensor_relu_save_mask(input)
        return _relu_mask(input)[0]
    return _relu(input)  # a non-tensor gets the op's TypeError


def _is_dtensor(input):
    dtensor = sys.modules.get("torch.distributed.tensor")
    return dtensor is not None and isinstance(input, dtensor.DTensor)


def _dtensor_relu_save_mask(input):
    """save_mask on a DTensor: each shard's own mask, on its local tensor. to_local and from_local are
    differentiable, and from_local's backward brings the gradient to the placements of this output, so each rank's
    gradient meets the mask of its own shard. A Partial input is reduced first, as DTensor does for torch.relu."""
    from torch.distributed.tensor import DTensor, Replicate

    placements = [Replicate() if p.is_partial() else p for p in input.placements]
    input = input.redistribute(input.device_mesh, placements)
    out = _relu_mask(input.to_local())[0]
    return DTensor.from_local(out, input.device_mesh, placements, run_check=False, shape=input.shape,
                              stride=input.stride())


def _relu_save_mask_(input):
    # In place on a DTensor saves the output, as plain relu_ (its shards' masks would need a second tensor).
    if isinstance(input, torch.Tensor) and input.requires_grad and torch.is_grad_enabled() and not _is_dtensor(input):
        _relu_mask_(input)
        return input
    return _relu_(input)


# What the C entries (csrc/python_module.cpp) call for tensor subclasses and torch function modes, so that these see
# the ops as through torch.ops.
_C._set_fallbacks((_relu, _relu_, _relu_save_mask, _relu_save_mask_))

_is_compiling = torch.compiler.is_compiling  # under torch.compile and torch.export


def _is_exporting():
    # The flag torch.compiler.is_exporting() returns, read directly: Dynamo before torch 2.13 folds that call to True
    # under torch.compile as well, which would drop the mask from every compiled graph.
    return getattr(torch.compiler, "_is_exporting_flag", False)


def _traced(input, in_place, save_mask):
    """What torch.compile and torch.export trace (config.opaque_under_compile): torch's relu, which Inductor fuses,
    or relu_ext's ops; an export then holds no mask op, as ONNX cannot translate one. Dynamo guards on the setting,
    so a change recompiles."""
    if not config.opaque_under_compile:
        return torch.relu_(input) if in_place else torch.relu(input)
    if save_mask and not _is_exporting():
        return _relu_save_mask_(input) if in_place else _relu_save_mask(input)
    return _relu_(input) if in_place else _relu(input)


class _ReLUFunction(torch.autograd.Function):
    """relu as an autograd.Function: forward relu_ext::relu (relu_ when inplace) saving the output, as torch's relu
    does; backward relu_ext::relu_backward, itself differentiable (double backward); forward mode through jvp; works
    under torch.func (setup_context, a vmap rule)."""

    @staticmethod
    def forward(input, inplace=False):
        if not inplace:
            return _relu(input)
        if _is_compiling():  # Dynamo cannot trace the guard below; versions do not matter in a traced graph
            return _relu_(input)
        # mark_dirty bumps the version itself: the op runs below the kernel that would bump it a second time.
        with torch._C._AutoDispatchBelowADInplaceOrView():
            return _relu_(input)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.inplace = inputs[1]
        if ctx.inplace:
            ctx.mark_dirty(inputs[0])
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (result,) = ctx.saved_tensors
        return _relu_backward(grad_output, result), None

    @staticmethod
    def jvp(ctx, input_t, inplace_t):
        (result,) = ctx.saved_tensors
        output_t = _relu_backward(input_t, result)
        if not ctx.inplace:
            return output_t
        input_t.copy_(output_t)  # in place: the input's tangent, updated
        # A tangent batched by vmap (check_batched_forward_grad) does not share the counter its copy_ bumps.
        torch.autograd.graph.increment_version(input_t)
        return input_t

    @staticmethod
    def vmap(info, in_dims, input, inplace):
        # Elementwise: the batch goes through whole. (generate_vmap_rule would lose mark_dirty's input: vmap hands
        # setup_context the batched input, not the tensor forward returned.)
        return _ReLUFunction.apply(input, inplace), in_dims[0]


class ReLUFunction(_ReLUFunction):
    __doc__ = _ReLUFunction.__doc__

    @classmethod
    def apply(cls, input, inplace=False):
        if inplace and isinstance(input, torch.Tensor) and input.requires_grad and torch.is_grad_enabled():
            _C._check_inplace(input)  # torch's checks, which autograd.Function makes only after forward has written
        # The class without this method: torch.compile takes its apply as any autograd.Function's.
        return _ReLUFunction.apply(input, inplace)


def _clearer_error(input, op, error):
    """The exception to raise for an input the op refused."""
    if not isinstance(input, torch.Tensor):
        return TypeError(f"relu_ext.{op}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.is_cuda and not WITH_CUDA:
        return RuntimeError(f"relu_ext.{op}: got a CUDA tensor, but relu_ext was built without CUDA kernels "
                            f"({_build_note()}). Rebuild it where a matching CUDA toolkit is installed, with "
                            "`RELU_EXT_CUDA=1 pip install --no-build-isolation --no-deps --force-reinstall .`")
    if input.is_quantized:
        return NotImplementedError(f"relu_ext.{op}: quantized tensors are not supported; call .dequantize() first, "
                                   "or use torch.relu")
    if input.is_mkldnn:
        return NotImplementedError(f"relu_ext.{op}: mkldnn tensors are not supported; call .to_dense() first")
    return error


def _build_note():
    try:
        from ._build_info import BUILD_NOTE
    except ImportError:
        return "no build note"
    return BUILD_NOTE


def _other_layout_relu(input):
    """relu of a sparse or nested tensor: the kernel on its stored values, which relu maps 0 to 0 allows. Returns
    None for other tensors."""
    if input.is_nested:
        if input.layout == torch.jagged:
            return torch.nested.nested_tensor_from_jagged(relu(input.values()), input.offsets(), input.lengths(),
                                                          jagged_dim=input._ragged_idx)
        return torch.nested.as_nested_tensor([relu(t) for t in input.unbind()], layout=torch.strided)
    if input.layout == torch.sparse_coo:
        input = input.coalesce()  # relu(a) + relu(b) is not relu(a + b)
        return torch.sparse_coo_tensor(input.indices(), relu(input.values()), input.shape, is_coalesced=True,
                                       check_invariants=False)  # the indices are input's own
    if input.layout in (torch.sparse_csr, torch.sparse_bsr):
        indices = input.crow_indices(), input.col_indices()
    elif input.layout in (torch.sparse_csc, torch.sparse_bsc):
        indices = input.ccol_indices(), input.row_indices()
    else:
        return None
    return torch.sparse_compressed_tensor(*indices, relu(input.values()), input.shape, layout=input.layout,
                                          check_invariants=False)


def relu(input, inplace=False, save_mask=False):
    """Like torch.nn.functional.relu: max(input, 0) elementwise, NaN and -0.0 passed through; differentiable.
    save_mask=True: the same output, but the backward keeps one bit per element instead of the output (README)."""
    if inplace:
        return relu_(input, save_mask=save_mask)
    if _is_compiling():
        return _traced(input, False, save_mask)
    try:
        return _C.relu_save_mask(input) if save_mask else _C.relu(input)
    except (RuntimeError, TypeError) as error:
        return _refused(input, False, error)


def relu_(input, save_mask=False):
    """Like torch.relu_: relu in place, returning input. Raises before writing, as torch does, on a leaf that
    requires grad and on a tensor whose elements share memory. save_mask as in relu."""
    if _is_compiling():
        return _traced(input, True, save_mask)
    try:
        return _C.relu_save_mask_(input) if save_mask else _C.relu_(input)
    except (RuntimeError, TypeError) as error:
        return _refused(input, True, error)


def _refused(input, in_place, error):
    """An input the op refused: relu of a sparse or nested tensor, else the error, made clearer where Python can
    tell why."""
    if isinstance(input, torch.Tensor):
        if in_place and input.layout in _SPARSE_LAYOUTS:
            return _sparse_relu_(input)
        out = None if in_place else _other_layout_relu(input)
        if out is not None:
            return out
    clearer = _clearer_error(input, "relu_" if in_place else "relu", error)
    if clearer is error:
        raise error
    raise clearer from None


_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def _sparse_relu_(input):
    """torch.relu_ on a sparse tensor: its stored values in place (torch refuses an uncoalesced COO tensor)."""
    if input.layout == torch.sparse_coo:
        if not input.is_coalesced():
            torch.relu_(input)  # torch's own error
        relu_(input._values())
    else:
        relu_(input.values())
    return input
