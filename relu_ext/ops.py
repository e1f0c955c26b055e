"""The Python side of the relu_ext ops: fake kernels, vmap rules, autograd, and the functional API."""
import torch

from . import WITH_CUDA, _C

_relu = torch.ops.relu_ext.relu.default
_relu_ = torch.ops.relu_ext.relu_.default
_relu_backward = torch.ops.relu_ext.relu_backward.default
_relu_backward_ = torch.ops.relu_ext.relu_backward_.default
# relu/relu_ call these C entries (csrc/relu_python.cpp) outside torch.compile: through the OpOverload a call costs
# ~0.4 us more here, a quarter of torch.relu's whole time at 2^12 elements. torch.compile cannot trace them, so
# there relu/relu_ call the OpOverloads; so do the entries for tensor subclasses and torch function modes.
_C._set_overloads(_relu, _relu_)
_relu_entry = _C.relu
_relu__entry = _C.relu_
_is_compiling = torch.compiler.is_compiling


# ----------------------------------------------------------------------------------------------------------------
# Fake kernels: shape, dtype and strides without data, for FakeTensor, meta tensors and torch.compile.

def _contiguous_strides(shape):
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _is_non_overlapping_and_dense(t):
    """c10's rule: sorted by stride, the dims of size >= 2 are laid out without gaps or overlaps."""
    if t.is_contiguous():
        return True
    dims = sorted((d for d in range(t.dim()) if t.shape[d] >= 2), key=t.stride)
    step = 1
    for d in dims:
        if t.stride(d) != step:
            return False
        step *= t.shape[d]
    return True


def _elementwise_strides(*inputs):
    """The strides torch's TensorIterator gives an elementwise op's output; csrc/relu.cpp follows the same rule."""
    first = inputs[0]
    if all(t.is_contiguous() for t in inputs):
        return _contiguous_strides(first.shape)
    if all(t.is_contiguous(memory_format=torch.channels_last) for t in inputs):
        return torch.empty(first.shape, device="meta", memory_format=torch.channels_last).stride()
    if all(_is_non_overlapping_and_dense(t) and t.stride() == first.stride() for t in inputs):
        return first.stride()
    # Dense in the inputs' order of dims: the first input whose strides differ decides, broadcast (stride 0) dims
    # are skipped, and of two equal strides the smaller dim goes inside.
    shape, ndim = first.shape, first.dim()
    perm = list(range(ndim - 1, -1, -1))  # perm[0] is the innermost dim

    def should_swap(dim0, dim1):
        for t in inputs:
            s0, s1 = t.stride(dim0), t.stride(dim1)
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if shape[dim0] > shape[dim1]:
                return 1
        return 0

    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            cmp = should_swap(perm[dim0], perm[dim1])
            if cmp > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif cmp < 0:
                break
    strides, step = [0] * ndim, 1
    for dim in perm:
        strides[dim] = step
        step *= shape[dim]
    return tuple(strides)


_SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                     torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def _check_dtype(t, op):
    if t.dtype not in _SUPPORTED_DTYPES:
        raise NotImplementedError(f"relu_ext.{op}: dtype {t.dtype} is not supported (as torch.relu does not support "
                                  f"it); supported dtypes: {', '.join(str(d) for d in _SUPPORTED_DTYPES)}. "
                                  "Convert first, e.g. x.to(torch.float32)")


@torch.library.register_fake("relu_ext::relu")
def _relu_fake(self):
    _check_dtype(self, "relu")
    return self.new_empty_strided(self.shape, _elementwise_strides(self))


@torch.library.register_fake("relu_ext::relu_")
def _relu__fake(self):
    _check_dtype(self, "relu_")


def _check_backward_inputs(grad_output, result, op):
    _check_dtype(result, op)
    torch._check(grad_output.shape == result.shape, lambda: (
        f"relu_ext.{op}: grad_output has shape {list(grad_output.shape)} but result has shape "
        f"{list(result.shape)}; they must match"))
    torch._check(grad_output.dtype == result.dtype, lambda: (
        f"relu_ext.{op}: grad_output has dtype {grad_output.dtype} but result has dtype {result.dtype}; "
        "they must match"))
    torch._check(grad_output.device == result.device, lambda: (
        f"relu_ext.{op}: grad_output is on {grad_output.device} but result is on {result.device}; they "
        "must be on the same device"))


@torch.library.register_fake("relu_ext::relu_backward")
def _relu_backward_fake(grad_output, result):
    _check_backward_inputs(grad_output, result, "relu_backward")
    return result.new_empty_strided(result.shape, _elementwise_strides(result, grad_output))


@torch.library.register_fake("relu_ext::relu_backward_")
def _relu_backward__fake(grad_output, result):
    _check_backward_inputs(grad_output, result, "relu_backward_")


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
    size = info.batch_size
    grad_output = _with_batch_dim_first(grad_output, grad_dim, size)
    result = _with_batch_dim_first(result, result_dim, size)
    return _relu_backward(grad_output, result), 0


def _relu_backward__vmap(info, in_dims, grad_output, result):
    grad_dim, result_dim = in_dims
    if grad_dim is None and result_dim is not None:
        raise RuntimeError("vmap: relu_ext.relu_backward_(grad_output, result) cannot write a result batched over "
                           "vmap into a grad_output that is not; use relu_ext::relu_backward, which returns a new "
                           "tensor")
    if grad_dim is not None:
        grad_output = grad_output.movedim(grad_dim, 0)
        result = _with_batch_dim_first(result, result_dim, info.batch_size)
    _relu_backward_(grad_output, result)
    return None, None


def _with_batch_dim_first(t, dim, size):
    return t.expand(size, *t.shape) if dim is None else t.movedim(dim, 0)


if hasattr(torch.library, "register_vmap"):  # torch >= 2.5
    torch.library.register_vmap("relu_ext::relu", _relu_vmap)
    torch.library.register_vmap("relu_ext::relu_", _relu__vmap)
    torch.library.register_vmap("relu_ext::relu_backward", _relu_backward_vmap)
    torch.library.register_vmap("relu_ext::relu_backward_", _relu_backward__vmap)


# ----------------------------------------------------------------------------------------------------------------
# Autograd. The ops carry their own autograd, in C++ (csrc/relu_autograd.cpp), which relu/relu_/ReLU use: a Python
# autograd.Function costs ~25 us per call here (setup_context-style apply() runs inspect.signature). ReLUFunction is
# the same computation as a Python Function, for users who want one.

class ReLUFunction(torch.autograd.Function):
    """relu as an autograd.Function: forward relu_ext::relu (or relu_ when inplace), saving the output as torch's relu
    does; backward relu_ext::relu_backward, itself differentiable, so double backward works; forward mode through
    jvp. Works under torch.func (setup_context and a vmap rule)."""

    @staticmethod
    def forward(input, inplace=False):
        if inplace:
            _relu_(input)
            return input
        return _relu(input)

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
        """Forward mode (torch.func.jvp, jacfwd): the tangent goes through the gradient's rule, as torch's relu."""
        (result,) = ctx.saved_tensors
        output_t = _relu_backward(input_t, result)
        return input_t.copy_(output_t) if ctx.inplace else output_t  # in place: the input's tangent, updated

    @staticmethod
    def vmap(info, in_dims, input, inplace=False):
        return ReLUFunction.apply(input, inplace), in_dims[0]


# ----------------------------------------------------------------------------------------------------------------
# Functional API, as torch.nn.functional.relu / relu_. The op is called first; the checks that need Python run
# only when it raises, so that a call costs little more than torch.relu.

def _clearer_error(input, op, error):
    """Returns the exception to raise for an input the op refused."""
    if not isinstance(input, torch.Tensor):
        return TypeError(f"relu_ext.{op}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.is_cuda and not WITH_CUDA:
        return RuntimeError(f"relu_ext.{op}: got a CUDA tensor, but relu_ext was built without CUDA (no CUDA toolkit "
                            "or no CUDA build of torch at build time). Rebuild it where nvcc is installed, with "
                            "`RELU_EXT_CUDA=1 pip install --no-build-isolation --no-deps --force-reinstall .`")
    if input.is_quantized:
        return NotImplementedError(f"relu_ext.{op}: quantized tensors are not supported (quantization in torch is "
                                   "deprecated); call .dequantize() first, or use torch.relu")
    if input.layout != torch.strided and op == "relu_":
        return NotImplementedError(f"relu_ext.relu_: in-place relu of a {input.layout} tensor is not supported; "
                                   "use relu_ext.relu(x), which returns a new sparse tensor")
    return error


def _sparse_relu(input):
    """relu maps 0 to 0, so on a sparse tensor it is relu of the stored values, once duplicates are summed."""
    if input.layout == torch.sparse_coo:
        input = input.coalesce()  # relu(a) + relu(b) is not relu(a + b)
        return torch.sparse_coo_tensor(input._indices(), relu(input._values()), input.shape,
                                       is_coalesced=True, check_invariants=False)
    if input.layout in (torch.sparse_csr, torch.sparse_bsr):
        indices = input.crow_indices(), input.col_indices()
    elif input.layout in (torch.sparse_csc, torch.sparse_bsc):
        indices = input.ccol_indices(), input.row_indices()
    else:
        raise NotImplementedError(f"relu_ext.relu: layout {input.layout} is not supported; call .to_dense() first")
    return torch.sparse_compressed_tensor(*indices, relu(input.values()), input.shape, layout=input.layout,
                                          check_invariants=False)


def relu(input, inplace=False):
    """Like torch.nn.functional.relu: max(input, 0) elementwise, NaN and -0.0 passed through; differentiable."""
    if inplace:
        return relu_(input)
    try:
        return _relu(input) if _is_compiling() else _relu_entry(input)
    except (RuntimeError, NotImplementedError, TypeError) as error:
        if isinstance(input, torch.Tensor) and input.layout != torch.strided and not input.is_quantized:
            return _sparse_relu(input)
        raise _clearer_error(input, "relu", error) from None


def relu_(input):
    """Like torch.relu_: relu in place, returning input. Raises before writing, as torch does, on a leaf that
    requires grad and on a tensor whose elements share memory."""
    try:
        if _is_compiling():
            _relu_(input)
        else:
            _relu__entry(input)
    except (RuntimeError, NotImplementedError, TypeError) as error:
        raise _clearer_error(input, "relu_", error) from None
    return input

