"""Property-based parity: random shapes, dtypes, values and layouts; forward, in-place and backward against torch.

RELU_EXT_FUZZ_EXAMPLES raises the number of examples (default 500, with a fixed seed) for a long run."""
import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DTYPES, SPECIAL_VALUES, check_all_ops

MAX_ELEMENTS = 60_000


@st.composite
def shapes(draw):
    shape, budget = [], MAX_ELEMENTS
    for _ in range(draw(st.integers(0, 4))):
        size = draw(st.integers(0, min(70, budget)))
        shape.append(size)
        budget = budget // max(size, 1)
    return tuple(shape)


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(shapes())
    mix = draw(st.sampled_from(["normal", "special", "negative", "positive"]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 50
    if mix == "special":
        pool = torch.tensor(SPECIAL_VALUES if dtype.is_floating_point else [0.0, -1.0, 1.0, -128.0, 127.0],
                            dtype=torch.float64)
        x = pool[torch.randint(len(pool), shape, generator=g)]
    elif mix == "negative":
        x = -x.abs() - 1
    elif mix == "positive":
        x = x.abs() + 1
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        x = x.nan_to_num(0.0).clamp(info.min, info.max)
    x = x.to(dtype)
    for transform in draw(st.lists(st.sampled_from(
            ["permute", "stepped", "offset", "expand", "channels_last", "transpose"]), max_size=3)):
        x = apply_layout(draw, x, transform)
    return x


def apply_layout(draw, x, transform):
    if x.dim() == 0:
        return x
    dim = draw(st.integers(0, x.dim() - 1))
    if transform == "permute":
        return x.permute(draw(st.permutations(range(x.dim()))))
    if transform == "transpose":
        return x.transpose(dim, draw(st.integers(0, x.dim() - 1)))
    if transform == "stepped":
        return x[(slice(None),) * dim + (slice(draw(st.integers(0, 2)), None, draw(st.integers(1, 3))),)]
    if transform == "offset":
        return x.narrow(dim, min(1, x.shape[dim]), max(x.shape[dim] - 1, 0))
    if transform == "expand":
        if x.shape[dim] == 0:
            return x
        shape = list(x.shape)
        return x.narrow(dim, 0, 1).expand(shape)
    if transform == "channels_last" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


@settings(max_examples=int(os.environ.get("RELU_EXT_FUZZ_EXAMPLES", "500")), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tensors())
def test_random_tensors_match_torch(x):
    check_all_ops(x)
