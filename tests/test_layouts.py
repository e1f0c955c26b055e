"""Sparse and nested tensors: relu_ext's kernel on their stored values, torch's result, layout and gradients; and
strided tensors with more dims than can be merged."""
import pytest
import torch

import relu_ext
from conftest import assert_same

pytestmark = pytest.mark.filterwarnings("ignore:.*(Sparse|sparse|nested).*:UserWarning")


def _dense(t):
    return t.to_dense() if t.layout != torch.strided else t


def _compare(mine, theirs):
    assert mine.layout == theirs.layout and mine.shape == theirs.shape
    assert_same(_dense(mine), _dense(theirs))


_DENSE = torch.tensor([[0.0, -1.0, 2.0], [3.0, 0.0, -4.0]], dtype=torch.float64)
SPARSE = {
    "coo": lambda: _DENSE.to_sparse(),
    "coo_uncoalesced": lambda: torch.sparse_coo_tensor(torch.tensor([[0, 0, 1, 1], [1, 1, 0, 2]]),
                                                       torch.tensor([-1.0, 3.0, 3.0, -4.0], dtype=torch.float64),
                                                       (2, 3)),
    "csr": lambda: _DENSE.to_sparse_csr(),
    "csc": lambda: _DENSE.to_sparse_csc(),
    "bsr": lambda: _DENSE.to_sparse_bsr((1, 1)),
}


@pytest.mark.parametrize("make", SPARSE.values(), ids=list(SPARSE))
def test_sparse_values_and_layout_match_torch(make):
    _compare(relu_ext.relu(make()), torch.relu(make()))


def test_sparse_coo_gradients_match_torch():
    results = []
    for relu in (relu_ext.relu, torch.relu):
        x = _DENSE.to_sparse().requires_grad_()
        y = relu(x)
        assert y.requires_grad and y.grad_fn is not None
        (y.to_dense() * torch.arange(6.0, dtype=torch.float64).view(2, 3)).sum().backward()
        results.append((y.detach(), x.grad))
    for mine, theirs in zip(*results):
        _compare(mine, theirs)


def test_in_place_on_sparse_coo_matches_torch():
    for module in (relu_ext.ReLU(inplace=True), relu_ext.relu_):
        mine, theirs = _DENSE.to_sparse(), _DENSE.to_sparse()
        assert module(mine) is mine
        torch.relu_(theirs)
        _compare(mine, theirs)
    with pytest.raises(RuntimeError) as torch_error:
        torch.relu_(SPARSE["coo_uncoalesced"]())
    with pytest.raises(RuntimeError) as my_error:
        relu_ext.relu_(SPARSE["coo_uncoalesced"]())
    assert str(my_error.value) == str(torch_error.value)


def _nested(layout):
    parts = [torch.randn(2, 5, generator=torch.Generator().manual_seed(i), dtype=torch.float64) for i in range(3)]
    parts[1] = parts[1][:1]
    return torch.nested.nested_tensor(parts, layout=layout, requires_grad=True)


@pytest.mark.parametrize("layout", [torch.strided, torch.jagged], ids=["strided", "jagged"])
def test_nested_values_layout_and_gradients_match_torch(layout):
    results = []
    for relu in (relu_ext.relu, torch.relu):
        x = _nested(layout)
        y = relu(x)
        assert y.is_nested and y.layout == layout
        sum(t.sum() * (i + 1) for i, t in enumerate(y.unbind())).backward()
        results.append((y, x.grad))
    for mine, theirs in zip(*results):
        for a, b in zip(mine.unbind(), theirs.unbind()):
            assert_same(a.detach(), b.detach())


def test_more_dims_than_can_be_merged():
    """26 dims of size 2 that no two merge (2^26 int8 elements over a small storage)."""
    base = torch.randint(-100, 100, (2**16,), dtype=torch.int8)
    x = base.as_strided([2] * 26, [2**i * 3 % 8191 + 1 for i in range(26)])
    for mine, theirs in [(relu_ext.relu(x), torch.relu(x)),
                         (torch.ops.relu_ext.relu_backward(x, torch.relu(x)),
                          torch.ops.aten.threshold_backward(x, torch.relu(x), 0))]:
        assert mine.stride() == theirs.stride() and torch.equal(mine, theirs)
