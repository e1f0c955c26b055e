"""Shared helpers: torch is the oracle, and results are compared bit for bit."""
import os
import re
import shutil
import subprocess

import pytest
import torch

import relu_ext  # registers the ops
from relu_ext._loader import torch_accepts

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64]


# The dtypes the installed torch accepts (uint16/32/64 in torch.relu from 2.15 on, not in its threshold backward).
WIDE_UNSIGNED_DTYPES = [torch.uint16, torch.uint32, torch.uint64]
INT_DTYPES += [d for d in WIDE_UNSIGNED_DTYPES if torch_accepts(torch.relu, d)]
DTYPES = FLOAT_DTYPES + INT_DTYPES
BACKWARD_DTYPES = [d for d in DTYPES if torch_accepts(lambda t: torch.ops.aten.threshold_backward(t, t, 0), d)]
REFUSED_DTYPES = [d for d in [torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2]
                  + WIDE_UNSIGNED_DTYPES if d not in DTYPES]

def clone_storage(x):
    """x's exact layout (offset, strides, gaps) over a copy of its storage."""
    return torch.empty(0, dtype=x.dtype, device=x.device).set_(
        x.untyped_storage().clone(), x.storage_offset(), x.shape, x.stride())


def unpack_mask(mask):
    """Every bit of a relu_mask mask, one bool each: bit i % 8 of byte i // 8, lowest first."""
    shifts = torch.arange(8, dtype=torch.uint8, device=mask.device)
    return ((mask.unsqueeze(1) >> shifts) & 1).view(-1).bool()


def check_mask(mask, result, order_like):
    """mask holds !(result <= 0) (where the gradient passes), bit i for element i in the storage order of a dense
    tensor with order_like's order of dims (empty_like's), and zero padding bits."""
    assert mask.dtype == torch.uint8 and mask.shape == ((result.numel() + 7) // 8,)
    passes = ~(result <= 0)
    in_order = torch.empty(result.numel(), dtype=torch.bool, device=result.device)
    in_order.as_strided(result.shape, torch.empty_like(order_like).stride()).copy_(passes)
    bits = unpack_mask(mask)
    assert torch.equal(bits[:result.numel()], in_order)
    assert not bits[result.numel():].any(), "padding bits set"


def check_all_ops(x):
    """Forward, in-place and backward on x (any layout) against torch, plain and with the 1-bit mask."""
    result = torch.relu(x)
    assert_same(torch.ops.relu_ext.relu(x), result)
    in_place = torch._debug_has_internal_overlap(x) != 1
    if in_place:
        view_mine, view_theirs = clone_storage(x), clone_storage(x)
        torch.ops.relu_ext.relu_(view_mine)
        torch.relu_(view_theirs)
        assert_same(view_mine, view_theirs)
    grad = make_tensor(x.shape, x.dtype, x.device, seed=1)
    if x.dtype in BACKWARD_DTYPES:
        expected = torch.ops.aten.threshold_backward(grad, result, 0)
        assert_same(torch.ops.relu_ext.relu_backward(grad, result), expected)
    else:  # refused as torch refuses it
        with pytest.raises(NotImplementedError, match="relu_backward"):
            torch.ops.relu_ext.relu_backward(grad, result)
    if not x.dtype.is_floating_point:  # the mask ops are for what has gradients
        with pytest.raises(NotImplementedError, match="the mask ops take floating-point tensors"):
            torch.ops.relu_ext.relu_mask(x)
        return
    out, mask = torch.ops.relu_ext.relu_mask(x)
    assert_same(out, result)
    check_mask(mask, result, out)
    assert_same(torch.ops.relu_ext.relu_mask_backward(grad, mask, out.stride()), expected)
    if in_place:
        view_masked = clone_storage(x)
        in_place_mask = torch.ops.relu_ext.relu_mask_(view_masked)
        assert_same(view_masked, view_theirs)
        check_mask(in_place_mask, view_theirs, x)  # in x's order of dims
        assert_same(torch.ops.relu_ext.relu_mask_backward(grad, in_place_mask, x.stride()),  # the result's strides
                    torch.ops.aten.threshold_backward(grad, view_theirs, 0))


def pytest_report_header(config):
    try:
        from relu_ext._build_info import BUILD_NOTE
    except ImportError:
        BUILD_NOTE = "unknown (no relu_ext/_build_info.py)"
    return f"relu_ext {relu_ext.__version__}, {BUILD_NOTE}"


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


_SIGNED_VIEW = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


def assert_same(actual, expected):
    """Same dtype, shape, strides and values; NaN matches NaN, and -0.0 must stay -0.0."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.stride() == expected.stride(), (actual.stride(), expected.stride())
    if actual.dtype in _SIGNED_VIEW:  # torch has few ops for these: compare their bits
        actual, expected = actual.view(_SIGNED_VIEW[actual.dtype]), expected.view(_SIGNED_VIEW[actual.dtype])
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
    if actual.dtype.is_floating_point:
        both_numbers = ~(actual.isnan() | expected.isnan())
        assert torch.equal(actual.signbit()[both_numbers], expected.signbit()[both_numbers]), "sign of zero differs"


SPECIAL_VALUES = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 1e-40, -1e-40, 3.0e38, -3.0e38,
                  6.0e-8, -6.0e-8, 65504.0, -65504.0]


def make_tensor(shape, dtype, device="cpu", seed=0):
    """Random values with both signs, plus the special values of floating types where there is room."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 10
        flat = x.view(-1)
        k = min(flat.numel(), len(SPECIAL_VALUES))
        if k:
            flat[:k] = torch.tensor(SPECIAL_VALUES[:k], dtype=torch.float64)
            flat.copy_(flat[torch.randperm(flat.numel(), generator=g)])
        return x.to(dtype).to(device)
    info = torch.iinfo(dtype)
    high = min(info.max, 2**63 - 1)  # uint64 beyond int64 is not drawn
    return torch.randint(info.min, high, shape, generator=g, dtype=torch.int64).to(dtype).to(device)


def usable_cuda_toolkit():
    """The nvcc on PATH (or under CUDA_HOME) when it can build for this torch: a CUDA build of torch and a toolkit of
    the same major version. Worked out apart from setup.py's decision, so that the tests check it."""
    nvcc = shutil.which("nvcc") or os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc")
    if torch.version.cuda is None or not os.path.isfile(nvcc):
        return None
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"release (\d+)\.", out)
    return nvcc if match and match[1] == torch.version.cuda.split(".")[0] else None


# Models and settings for the compile, export and ONNX tests.

def simple_model(relu):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 20), relu, torch.nn.Linear(20, 1)).eval()


class Functional(torch.nn.Module):
    def __init__(self, inplace):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return relu_ext.relu(x, inplace=self.inplace)


RELUS = {"module": lambda: relu_ext.ReLU(), "module_inplace": lambda: relu_ext.ReLU(inplace=True),
         "functional": lambda: Functional(False), "functional_inplace": lambda: Functional(True),
         "module_save_mask": lambda: relu_ext.ReLU(save_mask=True),
         "module_inplace_save_mask": lambda: relu_ext.ReLU(inplace=True, save_mask=True)}


@pytest.fixture(params=[False, True], ids=["fused", "opaque"])
def opaque(request, monkeypatch):
    """Each test that takes it runs with relu_ext.config.opaque_under_compile False, then True."""
    monkeypatch.setattr(relu_ext.config, "opaque_under_compile", request.param)
    torch._dynamo.reset()
    yield request.param
    torch._dynamo.reset()
