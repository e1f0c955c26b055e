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
    else:
        _relu_(input)


_is_compiling = torch.compiler.is_compiling  # under torch.compile and torch.export
_is_exporting = getattr(torch.compiler, "is_exporting", _is_compiling)  # torch < 2.7 cannot tell them apart


def _traced_as(tracing, traced, eager):
    """A fallback that calls `traced` while `tracing()` and `eager` (the op) otherwise."""
    def fallback(input):
        return traced(input) if tracing() else eager(input)
    return fallback


def _export_relu_(input):
    return input.copy_(_relu(input))


# What the C entries call for tensor subclasses and torch function modes: the ops, as torch.ops would be called, so
# that the subclass or mode sees them. torch.compile and torch.export trace with such tensors (FakeTensor,
# FunctionalTensor), and so these also decide what a traced graph holds. In the entries' order (relu, relu_,
# relu_save_mask, relu_save_mask_), first for the default setting: torch's relu, which Inductor fuses; then for
# opaque_under_compile: relu_ext's ops, except that an export holds no mask op and no in-place relu_ext op (relu and
# a copy_ instead), as ONNX translates neither. (The in-place entries return None whatever these return.)
_FALLBACKS = (
    _traced_as(_is_compiling, torch.relu, _relu),
    _traced_as(_is_compiling, torch.relu_, _relu_),
    _traced_as(_is_compiling, torch.relu, _relu_save_mask),
    _traced_as(_is_compiling, torch.relu_, _relu_save_mask_),
    _relu,
    _traced_as(_is_exporting, _export_relu_, _relu_),
    _traced_as(_is_exporting, _relu, _relu_save_mask),
    _traced_as(_is_exporting, _export_relu_, _relu_save_mask_),
)


def _refused(input, in_place, error):
    """What the C entries call with an input the op refused: relu of a sparse or nested tensor, else the error,
    made clearer where Python can tell why."""
    if isinstance(input, torch.Tensor):
        if in_place and input.layout in _SPARSE_LAYOUTS:
            return _sparse_relu_(input)
        out = None if in_place else _other_layout_relu(input)
        if out is not None:
            return out
    raise _clearer_error(input, "relu_" if in_place else "relu", error)


# relu, relu_ and ReLU call C entries (csrc/python_module.cpp), which skip the OpOverload's argument parsing, and which
# torch.compile puts in its graphs as they are (relu_ext/_on_import.py); one set for each setting of the switch.
_C._set_fallbacks(_refused, _FALLBACKS)
_ENTRY_NAMES = ("_relu_entry", "_relu__entry", "_relu_save_mask_entry", "_relu_save_mask__entry")
_ENTRIES = {False: (_C.relu, _C.relu_, _C.relu_save_mask, _C.relu_save_mask_),
            True: (_C.relu_opaque, _C.relu_opaque_, _C.relu_save_mask_opaque, _C.relu_save_mask_opaque_)}


# Globals here and in relu_ext.modules, which imports them: torch.compile guards on which entry a global names, so
# that a change of the setting, which rebinds both (_use_entries), recompiles. (An attribute of another module would
# be two guards.)
_relu_entry, _relu__entry, _relu_save_mask_entry, _relu_save_mask__entry = _ENTRIES[config.opaque_under_compile]


def _use_entries(opaque, *namespaces):
    for namespace in namespaces:
        namespace.update(zip(_ENTRY_NAMES, _ENTRIES[opaque]))


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
    return (_relu_save_mask_entry if save_mask else _relu_entry)(input)


def relu_(input, save_mask=False):
    """Like torch.relu_: relu in place, returning input. Raises before writing, as torch does, on a leaf that
    requires grad and on a tensor whose elements share memory. save_mask as in relu."""
    (_relu_save_mask__entry if save_mask else _relu__entry)(input)
    return input


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
