"""Outputs come from torch's allocator, as torch.relu's do: the profiler counts them, copy-on-write works."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import relu_ext
from conftest import assert_same


def _allocated_bytes(fn, x):
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x)
    return {e.key: e.cpu_memory_usage for e in prof.key_averages()}  # the op's own and its callees'


@pytest.mark.parametrize("numel", [2**10, 2**24])
def test_profiler_sees_the_output_allocation(numel):
    x = torch.randn(numel)
    mine = _allocated_bytes(relu_ext.relu, x)["relu_ext::relu"]
    theirs = _allocated_bytes(torch.relu, x)["aten::relu"]
    assert mine == theirs == x.nbytes


def test_backward_output_is_counted_too():
    g, r = torch.randn(2**20), torch.relu(torch.randn(2**20))
    used = _allocated_bytes(lambda _: torch.ops.relu_ext.relu_backward(g, r), None)
    assert used["relu_ext::relu_backward"] == g.nbytes


def test_copy_on_write_clone_of_an_output():
    out = relu_ext.relu(torch.randn(2**22))
    lazy = torch._lazy_clone(out)
    expected = out.clone()
    lazy.add_(1)  # the write copies first; the original keeps its values
    assert_same(out, expected)
    assert_same(lazy, expected + 1)
