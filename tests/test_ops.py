"""The op registrations: schemas, kernels per device, fake kernels, and torch.library.opcheck on every op."""
import os

import pytest
import torch

import relu_ext
from conftest import DEVICES, DTYPES, FLOAT_DTYPES, make_tensor, usable_cuda_toolkit

OPS = ["relu", "relu_", "relu_backward", "relu_mask", "relu_mask_", "relu_mask_backward"]


def test_schemas():
    assert str(torch.ops.relu_ext.relu.default._schema) == "relu_ext::relu(Tensor self) -> Tensor"
    assert str(torch.ops.relu_ext.relu_.default._schema) == "relu_ext::relu_(Tensor(a!) self) -> Tensor(a!)"
    assert (str(torch.ops.relu_ext.relu_backward.default._schema)
            == "relu_ext::relu_backward(Tensor grad_output, Tensor result) -> Tensor")
    assert str(torch.ops.relu_ext.relu_mask.default._schema) == "relu_ext::relu_mask(Tensor self) -> (Tensor, Tensor)"
    assert str(torch.ops.relu_ext.relu_mask_.default._schema) == "relu_ext::relu_mask_(Tensor(a!) self) -> Tensor"
    assert (str(torch.ops.relu_ext.relu_mask_backward.default._schema) == "relu_ext::relu_mask_backward(Tensor "
            "grad_output, Tensor mask, SymInt[] result_stride) -> Tensor")
    registered = [name for name in torch._C._dispatch_get_all_op_names() if name.startswith("relu_ext::")]
    assert sorted(registered) == sorted(f"relu_ext::{op}" for op in OPS)


@pytest.mark.parametrize("op", OPS)
def test_cpu_and_fake_kernels_registered(op):
    for key in ("CPU", "Meta"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"relu_ext::{op}", key), key


@pytest.mark.parametrize("op", OPS)
def test_cuda_kernels_registered_when_a_toolkit_was_found(op):
    """A machine with nvcc and a CUDA build of torch must get the CUDA kernels, GPU or not (CI relies on this)."""
    has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key(f"relu_ext::{op}", "CUDA")
    assert has_cuda == relu_ext.WITH_CUDA
    if usable_cuda_toolkit() and os.environ.get("RELU_EXT_CUDA") != "0":
        assert has_cuda, (f"nvcc {usable_cuda_toolkit()} matches this CUDA torch, but relu_ext was built without its "
                          "CUDA kernels (set RELU_EXT_CUDA=0 when running the tests of a deliberately CPU-only build)")


def finite(shape, dtype, device):
    """opcheck compares with NaN != NaN, so its samples hold numbers only (-0.0 and infinities included)."""
    x = make_tensor(shape, dtype, device)
    return x.nan_to_num(nan=-2.0, posinf=float("inf"), neginf=float("-inf")) if dtype.is_floating_point else x


def samples(device):
    for dtype in DTYPES:
        for shape in [(), (0,), (7,), (4, 33), (2, 3, 4, 5)]:
            yield finite(shape, dtype, device)
    yield finite((2, 3, 4, 5), torch.float32, device).contiguous(memory_format=torch.channels_last)
    yield finite((6, 8), torch.float32, device).t()
    yield finite((6, 8), torch.float32, device)[:, ::3]


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_relu(device):
    for x in samples(device):
        torch.library.opcheck(torch.ops.relu_ext.relu.default, (x,))
        if x.dtype in FLOAT_DTYPES:
            torch.library.opcheck(torch.ops.relu_ext.relu.default, (x.clone().requires_grad_(),))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_relu_(device):
    for x in samples(device):
        torch.library.opcheck(torch.ops.relu_ext.relu_.default, (x.clone(),))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_relu_backward(device):
    for x in samples(device):
        if x.dtype in FLOAT_DTYPES:
            torch.library.opcheck(torch.ops.relu_ext.relu_backward.default, (torch.ones_like(x), torch.relu(x)))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_mask_ops(device):
    for x in samples(device):
        if x.dtype not in FLOAT_DTYPES:
            continue  # refused (test_parity)
        torch.library.opcheck(torch.ops.relu_ext.relu_mask.default, (x,))
        torch.library.opcheck(torch.ops.relu_ext.relu_mask_.default, (x.clone(),))
        torch.library.opcheck(torch.ops.relu_ext.relu_mask.default, (x.clone().requires_grad_(),))
        out, mask = torch.ops.relu_ext.relu_mask(x)
        torch.library.opcheck(torch.ops.relu_ext.relu_mask_backward.default, (torch.ones_like(x), mask, out.stride()))


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "channels_last", "stepped"])
def test_meta_tensors_match_real_strides(layout):
    real = {"contiguous": torch.randn(2, 3, 4, 5), "transposed": torch.randn(2, 3, 4, 5).transpose(0, 3),
            "channels_last": torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
            "stepped": torch.randn(4, 6, 5, 6).permute(1, 3, 0, 2)[::2, :, 1:, ::2]}[layout]
    meta = torch.empty_strided(real.shape, real.stride(), device="meta")
    out = torch.ops.relu_ext.relu(meta)
    assert out.device.type == "meta"
    assert out.shape == real.shape and out.stride() == torch.relu(real).stride()
    grad = torch.ops.relu_ext.relu_backward(torch.empty_like(meta), meta)
    assert grad.stride() == torch.ops.aten.threshold_backward(torch.empty_like(real), real, 0).stride()
    out, mask = torch.ops.relu_ext.relu_mask(meta)
    assert out.stride() == torch.relu(real).stride() and mask.shape == ((real.numel() + 7) // 8,)
    assert torch.ops.relu_ext.relu_mask_(meta).shape == mask.shape
    for g in (torch.empty_like(meta), torch.empty(real.shape, device="meta")):  # as the result's, and contiguous
        grad = torch.ops.relu_ext.relu_mask_backward(g, mask, meta.stride())
        assert grad.stride() == torch.ops.aten.threshold_backward(torch.empty_like(g, device="cpu"), real, 0).stride()


# relu_ext.relu / relu_ call a C entry for plain tensors; everything else must reach the ops exactly as through
# torch.ops: tensor subclasses and torch function modes get their __torch_function__, dispatch modes see the op,
# autograd records it.

def test_tensor_subclass_gets_its_torch_function():
    seen = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(func)
            return super().__torch_function__(func, types, args, kwargs or {})

    x = torch.tensor([-1.0, 2.0]).as_subclass(Logged)
    out = relu_ext.relu(x)
    assert type(out) is Logged and out.tolist() == [0.0, 2.0]
    relu_ext.relu_(x)
    ops = [f for f in seen if isinstance(f, torch._ops.OpOverload)]  # tolist() goes through it too
    assert ops == [torch.ops.relu_ext.relu.default, torch.ops.relu_ext.relu_.default]
    out = relu_ext.relu(torch.tensor([-1.0, 2.0], requires_grad=True).as_subclass(Logged), save_mask=True)
    assert type(out) is Logged and torch.ops.relu_ext.relu_mask.default in seen


def test_torch_function_mode_sees_the_calls():
    from torch.overrides import TorchFunctionMode

    class Record(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.funcs = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.funcs.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.tensor([-1.0, 2.0])
    with Record() as mode:
        assert relu_ext.relu(x).tolist() == [0.0, 2.0]
        relu_ext.relu_(x)
    ops = [f for f in mode.funcs if isinstance(f, torch._ops.OpOverload)]  # tolist() goes through it too
    assert ops == [torch.ops.relu_ext.relu.default, torch.ops.relu_ext.relu_.default]
    assert x.tolist() == [0.0, 2.0]


def test_torch_dispatch_mode_sees_the_ops():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.funcs = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.funcs.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    with Record() as mode:
        relu_ext.relu(x).sum().backward()
    assert torch.ops.relu_ext.relu.default in mode.funcs and torch.ops.relu_ext.relu_backward.default in mode.funcs
    assert x.grad.tolist() == [0.0, 1.0]


def test_parameter_input_gives_a_plain_tensor_like_torch():
    p = torch.nn.Parameter(torch.tensor([-1.0, 2.0]))
    out, ref = relu_ext.relu(p), torch.relu(p)
    assert type(out) is type(ref) is torch.Tensor
    assert out.requires_grad and out.grad_fn is not None


def test_entry_releases_the_gil_while_the_kernel_runs():
    """torch's own bindings let other Python threads run during an op; relu_ext's entry must too. With thread
    switches at bytecode boundaries switched off (a 1000 s interval), a ticker thread can stamp a time between the
    call's start and end only if the call released the GIL."""
    import sys
    import threading
    import time

    x = torch.randn(2**25)
    ticks, running = [], True

    def ticker():
        while running:
            ticks.append(time.perf_counter())
            time.sleep(0)  # lets the main thread take the GIL

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    worker = threading.Thread(target=ticker)
    try:
        worker.start()
        while not ticks:
            time.sleep(0.001)
        start = time.perf_counter()
        relu_ext.relu(x)
        end = time.perf_counter()
    finally:
        running = False
        worker.join()
        sys.setswitchinterval(interval)
    assert any(start < t < end for t in ticks)
