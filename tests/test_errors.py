"""Bad input: the same exception type as torch.relu (or a clearer one), a message that names the problem and the
fix, and nothing written when an in-place call raises. Inputs torch accepts beyond dense ones work."""
import pytest
import torch

import relu_ext
from conftest import REFUSED_DTYPES, assert_same

CALLS = {
    "relu": relu_ext.relu,
    "relu_": relu_ext.relu_,
    "ReLU": relu_ext.ReLU(),
    "ReLU(inplace)": relu_ext.ReLU(inplace=True),
    "op relu": torch.ops.relu_ext.relu,
    "op relu_": torch.ops.relu_ext.relu_,
}


def torch_error(fn, *args):
    with pytest.raises(Exception) as info:
        fn(*args)
    return info.type


@pytest.mark.parametrize("dtype", REFUSED_DTYPES, ids=str)
@pytest.mark.parametrize("call", CALLS)
def test_unsupported_dtypes_raise_like_torch_and_write_nothing(dtype, call):
    x = torch.tensor([-1.0, 2.0, -3.0]).to(dtype)
    before = x.clone()
    expected = torch_error(torch.relu, x)
    with pytest.raises(expected) as info:
        CALLS[call](x)
    message = str(info.value)
    assert str(dtype).split(".")[-1].lower() in message.lower() or "Boolean" in message
    assert "convert" in message.lower() or "apply it to" in message  # the fix
    assert torch.equal(x.view(torch.uint8), before.view(torch.uint8))


def test_unsupported_dtype_in_backward():
    x = torch.ones(3, dtype=torch.complex64)
    with pytest.raises(NotImplementedError, match="complex"):
        torch.ops.relu_ext.relu_backward(x, x)


@pytest.mark.parametrize("value", [None, [1.0, -1.0], 3.0, "x"], ids=repr)
def test_non_tensors_raise_type_error(value):
    for fn in (relu_ext.relu, relu_ext.relu_, relu_ext.ReLU()):
        with pytest.raises(TypeError, match="must be a Tensor"):
            fn(value)
    assert torch_error(torch.relu, value) is TypeError


def test_inplace_on_expanded_and_leaf_leaves_input_unchanged():
    base = torch.tensor([[-1.0, 2.0]])
    with pytest.raises(RuntimeError, match="clone"):
        relu_ext.relu_(base.expand(3, 2))
    leaf = torch.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        relu_ext.ReLU(inplace=True)(leaf)
    assert torch.equal(base, torch.tensor([[-1.0, 2.0]])) and torch.equal(leaf.detach(), torch.tensor([-1.0, 2.0]))


def test_relu_backward_mismatches_are_named():
    g, r = torch.ones(2, 3), torch.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"grad_output has shape \[3, 2\] but result has shape \[2, 3\]"):
        torch.ops.relu_ext.relu_backward(g.t(), r)
    with pytest.raises(RuntimeError, match="grad_output has dtype torch.float64 but result has dtype torch.float32"):
        torch.ops.relu_ext.relu_backward(g.double(), r)
    with pytest.raises(RuntimeError, match="same device"):
        other = "cuda" if torch.cuda.is_available() else "meta"
        torch.ops.relu_ext.relu_backward(g.to(other), r)
    for bad in (torch.ones(3), torch.ones(2, 3, dtype=torch.float64)):
        with pytest.raises(RuntimeError, match="relu_backward"):  # the fake kernels say it too
            torch.ops.relu_ext.relu_backward(bad.to("meta"), r.to("meta"))


def test_cuda_tensor_on_cpu_only_build_says_how_to_rebuild(monkeypatch):
    """Simulated: a CPU-only build has no CUDA kernel, so the dispatcher refuses the call; the message says why."""
    class LooksLikeCuda(torch.Tensor):
        is_cuda = True

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if "relu_ext" in str(func):  # the op the entries call for a subclass, refused as the dispatcher would
                raise NotImplementedError("Could not run 'relu_ext::relu' with arguments from the 'CUDA' backend.")
            return super().__torch_function__(func, types, args, kwargs)

    monkeypatch.setattr(relu_ext.functional, "WITH_CUDA", False)
    x = torch.Tensor._make_subclass(LooksLikeCuda, torch.zeros(3))
    for fn in (relu_ext.relu, relu_ext.relu_):
        with pytest.raises(RuntimeError, match="built without CUDA.*RELU_EXT_CUDA=1 pip install"):
            fn(x)


@pytest.mark.filterwarnings("ignore:.*quantize")
def test_quantized_tensors_get_a_clear_error():
    q = torch.quantize_per_tensor(torch.tensor([-1.0, 2.0]), 0.1, 0, torch.qint8)
    with pytest.raises(NotImplementedError, match="quantized.*dequantize"):
        relu_ext.relu(q)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_tensors_give_torchs_result():
    dense = torch.tensor([[0.0, -1.0, 2.0], [3.0, 0.0, -4.0]])
    coo = dense.to_sparse()
    for sparse in (coo, coo.coalesce(), dense.to_sparse_csr()):
        mine, theirs = relu_ext.relu(sparse), torch.relu(sparse)
        assert mine.layout == theirs.layout
        assert_same(mine.to_dense(), theirs.to_dense())
    # duplicates are summed before relu: relu(-1 + 3) is 2, relu(-1) + relu(3) would be 3
    uncoalesced = torch.sparse_coo_tensor(torch.tensor([[0, 0, 1]]), torch.tensor([-1.0, 3.0, -2.0]), (2,),
                                          check_invariants=True)
    mine, theirs = relu_ext.relu(uncoalesced), torch.relu(uncoalesced)
    assert mine.is_coalesced() == theirs.is_coalesced()
    assert_same(mine.to_dense(), theirs.to_dense())


def test_meta_tensors_give_shape_only():
    x = torch.empty(4, 5, device="meta").t()
    out = relu_ext.relu(x)
    assert out.device.type == "meta" and out.shape == (5, 4) and out.stride() == torch.relu(x).stride()
    assert relu_ext.relu_(x) is x
