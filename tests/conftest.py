"""Shared helpers: torch is the oracle, and results are compared bit for bit."""
import pytest
import torch

import relu_ext  # noqa: F401  (registers the ops)

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64]
DTYPES = FLOAT_DTYPES + INT_DTYPES

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]


def assert_same(actual, expected):
    """Same dtype, shape, strides and values; NaN matches NaN, and -0.0 must stay -0.0."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.stride() == expected.stride(), (actual.stride(), expected.stride())
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
    return torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype).to(device)
