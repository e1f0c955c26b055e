"""save_mask=True: the same outputs and gradients as nn.ReLU, with one bit per element saved for the backward instead
of the output. The ops themselves are checked against torch in test_parity (every dtype and layout, through
check_all_ops) and test_ops (schemas, fake kernels, opcheck); every autograd mode in test_autograd*."""
import copy
import pickle

import pytest
import torch
from torch import nn

import relu_ext
from conftest import DEVICES, FLOAT_DTYPES, assert_same, make_tensor

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def _saved(fn, x):
    """What autograd saves while fn(x) runs: (dtype, shape) of each saved tensor."""
    saved = []

    def pack(t):
        saved.append((t.dtype, tuple(t.shape)))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    return out, saved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("inplace", [False, True])
def test_saves_one_bit_per_element_and_gives_torchs_values_and_gradients(device, dtype, inplace):
    x = make_tensor((5, 67), dtype, device)
    upstream = make_tensor((5, 67), dtype, device, seed=3)
    results = []
    for relu in (relu_ext.ReLU(inplace=inplace, save_mask=True), nn.ReLU(inplace=inplace)):
        leaf = x.clone().requires_grad_()
        out, saved = _saved(lambda t: relu(t * 1), leaf)
        (grad,) = torch.autograd.grad(out, leaf, upstream)
        results.append((out.detach(), grad, saved))
    (out, grad, saved), (out_torch, grad_torch, saved_torch) = results
    assert_same(out, out_torch)
    assert_same(grad, grad_torch)
    assert saved == [(torch.uint8, ((5 * 67 + 7) // 8,))]
    assert saved_torch == [(dtype, (5, 67))]


def test_without_grad_nothing_is_saved_and_no_mask_is_made():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.randn(100)
    for requires_grad, grad_mode, expected in [(False, True, "relu"), (True, False, "relu"), (True, True, "relu_mask")]:
        seen = []
        with torch.set_grad_enabled(grad_mode), Record():
            relu_ext.relu(x.clone().requires_grad_(requires_grad), save_mask=True)
        assert getattr(torch.ops.relu_ext, expected).default in seen


def test_flag_in_repr_copy_pickle_and_replace_relu():
    assert repr(relu_ext.ReLU(save_mask=True)) == "ReLU(save_mask=True)"
    assert repr(relu_ext.ReLU(True, save_mask=True)) == "ReLU(inplace=True, save_mask=True)"
    assert repr(relu_ext.ReLU()) == repr(nn.ReLU()) and not relu_ext.ReLU().save_mask
    masked = relu_ext.ReLU(save_mask=True)
    for clone in (copy.deepcopy(masked), pickle.loads(pickle.dumps(masked))):
        assert clone.save_mask
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Sequential(nn.ReLU()))
    relu_ext.replace_relu(model, save_mask=True)
    assert [(m.inplace, m.save_mask) for m in model.modules() if isinstance(m, relu_ext.ReLU)] == [(True, True),
                                                                                                    (False, True)]
    assert not relu_ext.replace_relu(nn.ReLU()).save_mask


@pytest.mark.parametrize("inplace", [False, True])
def test_torch_jit_script_keeps_the_flag(inplace):
    scripted = torch.jit.script(relu_ext.ReLU(inplace=inplace, save_mask=True))
    x = torch.randn(40, requires_grad=True)
    out, saved = _saved(lambda t: scripted(t * 1), x)
    assert saved == [(torch.uint8, (5,))]
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert_same(grad, (x > 0).float())


def _mlp(relu):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), relu, nn.Dropout(0.1), nn.Linear(256, 64))


def test_twenty_sgd_steps_follow_nn_relus_losses_bitwise():
    """The issue's memory model, smaller: Linear -> ReLU -> Dropout -> Linear, the same seeds, the same losses."""
    x, y = torch.randn(128, 64, generator=torch.Generator().manual_seed(1)), torch.randn(128, 64)
    losses = []
    for relu in (nn.ReLU(), relu_ext.ReLU(save_mask=True), relu_ext.ReLU(inplace=True, save_mask=True)):
        model = _mlp(relu)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        torch.manual_seed(2)  # dropout's masks
        run = []
        for _ in range(20):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    assert losses[1] == losses[0] and losses[2] == losses[0]


def _graphs(opaque, monkeypatch, fn, x):
    """The forward and backward graphs AOTAutograd makes of fn, and fn's compiled gradient."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    monkeypatch.setattr(relu_ext.config, "opaque_under_compile", opaque)
    torch._dynamo.reset()
    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    compiled = torch.compile(fn, backend=aot_autograd(fw_compiler=keep, bw_compiler=keep), fullgraph=True)
    (grad,) = torch.autograd.grad(compiled(x).sum(), x)
    torch._dynamo.reset()
    return [str(g.code) for g in graphs], grad


@pytest.mark.parametrize("inplace", [False, True])
def test_compiled_opaque_saves_the_mask_fused_lets_inductor_choose(monkeypatch, inplace):
    x = torch.randn(8, 16, requires_grad=True)
    fn = lambda t: relu_ext.relu(t * 2, inplace=inplace, save_mask=True) * 3  # noqa: E731
    (forward, backward), grad = _graphs(True, monkeypatch, fn, x)
    assert "relu_ext.relu_mask" in forward and "relu_ext.relu_mask_backward" in backward
    assert_same(grad, torch.where(x > 0, 6.0, 0.0))
    (forward, backward), grad = _graphs(False, monkeypatch, fn, x)
    assert "relu_ext" not in forward + backward
    assert_same(grad, torch.where(x > 0, 6.0, 0.0))


def test_mask_backward_refuses_a_wrong_mask_before_writing():
    g = torch.randn(4, 5)
    _, mask = torch.ops.relu_ext.relu_mask(torch.randn(4, 5))
    backward = torch.ops.relu_ext.relu_mask_backward
    with pytest.raises(RuntimeError, match="contiguous 1-D torch.uint8 tensor, got torch.float32"):
        backward(g, mask.float(), [5, 1])
    with pytest.raises(RuntimeError, match="a mask of 2 bytes cannot cover grad_output's 20 elements"):
        backward(g, mask[:2], [5, 1])
    with pytest.raises(RuntimeError, match="result_stride has 1 entries but grad_output has 2 dims"):
        backward(g, mask, [1])
    with pytest.raises(NotImplementedError, match="Boolean inputs not supported"):
        backward(g > 0, mask, [5, 1])
    with pytest.raises(NotImplementedError, match="the mask ops take floating-point tensors .got torch.int64"):
        backward(g.long(), mask, [5, 1])
    with pytest.raises(NotImplementedError, match="the mask ops take floating-point tensors"):
        torch.ops.relu_ext.relu_mask_(torch.ones(3, dtype=torch.int32))
    x = torch.tensor([-2, 3])
    assert_same(relu_ext.relu(x, save_mask=True), torch.relu(x))  # no gradient, no mask: plain relu
    with pytest.raises(RuntimeError, match="a mask of 2 bytes cannot cover"):  # the fake kernel's check is the same
        backward(g.to("meta"), mask[:2].to("meta"), [5, 1])
    with pytest.raises(NotImplementedError, match="floating-point"):
        torch.ops.relu_ext.relu_mask(torch.ones(3, dtype=torch.int8, device="meta"))
