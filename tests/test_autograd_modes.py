"""Autograd in every mode torch supports, against torch's relu: gradcheck with batched and forward-mode checks,
batched gradients, efficient-zero gradients, double backward's defined zeros, .grad's version, compiled autograd."""
import pytest
import torch

import relu_ext
from conftest import assert_same

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def _away_from_zero(*shape):
    x = torch.randn(*shape, dtype=torch.float64)
    return (x + 0.1 * x.sign()).requires_grad_()  # finite differences mislead at the kink


# Each relu_ext entry point beside the torch function it stands for; in-place ones act on a copy of the input.
ENTRIES = {
    "torch.ops.relu_ext.relu": (torch.ops.relu_ext.relu, torch.relu),
    "torch.ops.relu_ext.relu_": (lambda t: _in_place(torch.ops.relu_ext.relu_, t), lambda t: torch.relu_(t * 1)),
    "relu": (relu_ext.relu, torch.relu),
    "relu(inplace=True)": (lambda t: relu_ext.relu(t * 1, inplace=True), lambda t: torch.relu_(t * 1)),
    "relu_": (lambda t: relu_ext.relu_(t * 1), lambda t: torch.relu_(t * 1)),
    "ReLU": (relu_ext.ReLU(), torch.nn.ReLU()),
    "ReLU(inplace=True)": (lambda t: relu_ext.ReLU(inplace=True)(t * 1), lambda t: torch.nn.ReLU(True)(t * 1)),
    "ReLUFunction": (lambda t: relu_ext.ReLUFunction.apply(t, False), torch.relu),
    "ReLUFunction(inplace)": (lambda t: relu_ext.ReLUFunction.apply(t * 1, True), lambda t: torch.relu_(t * 1)),
    "relu(save_mask=True)": (lambda t: relu_ext.relu(t, save_mask=True), torch.relu),
    "ReLU(inplace=True, save_mask=True)": (lambda t: relu_ext.ReLU(inplace=True, save_mask=True)(t * 1),
                                           lambda t: torch.nn.ReLU(True)(t * 1)),
    "torch.ops.relu_ext.relu_mask": (lambda t: torch.ops.relu_ext.relu_mask(t)[0], torch.relu),
    "torch.ops.relu_ext.relu_mask_": (lambda t: _in_place(torch.ops.relu_ext.relu_mask_, t),
                                      lambda t: torch.relu_(t * 1)),
}


def _in_place(op, t):
    t = t * 1
    op(t)
    return t


CHECKS = dict(check_batched_grad=True, check_forward_ad=True, check_batched_forward_grad=True)


@pytest.mark.parametrize("fns", ENTRIES.values(), ids=list(ENTRIES))
def test_gradcheck_and_gradgradcheck_in_every_mode(fns):
    x = _away_from_zero(3, 4)
    for fn in fns:  # torch's own relu first passes the same checks, so the flags ask nothing torch does not do
        assert torch.autograd.gradcheck(fn, (x,), **CHECKS)
        assert torch.autograd.gradgradcheck(fn, (x,), check_batched_grad=True, check_fwd_over_rev=True,
                                            check_rev_over_rev=True)


def test_relu_backward_gradcheck_in_every_mode():
    g, r = _away_from_zero(3, 4), _away_from_zero(3, 4)
    for fn in (torch.ops.relu_ext.relu_backward, lambda a, b: torch.ops.aten.threshold_backward(a, b, 0)):
        assert torch.autograd.gradcheck(fn, (g, r), **CHECKS)
        assert torch.autograd.gradgradcheck(fn, (g, r), check_batched_grad=True)


@pytest.mark.parametrize("fns", ENTRIES.values(), ids=list(ENTRIES))
def test_batched_gradients_match_torch(fns):
    x = torch.randn(5, 3, dtype=torch.float64)
    results = []
    for fn in fns:
        xx = x.clone().requires_grad_()
        (g,) = torch.autograd.grad((fn(xx) * 2).sum(0), xx, torch.eye(3, dtype=torch.float64), is_grads_batched=True)
        jac = torch.autograd.functional.jacobian(fn, x, vectorize=True)
        hess = torch.autograd.functional.hessian(lambda t: (fn(t) * t).sum(), x, vectorize=True)
        results.append((g, jac, hess))
    for mine, theirs in zip(*results):
        assert_same(mine, theirs)


def test_efficient_zero_gradients_match_torch():
    grads = []
    for relu in (relu_ext.relu, lambda t: relu_ext.relu(t, save_mask=True), torch.relu):
        x = torch.randn(1 << 20, requires_grad=True)
        torch.sgn(relu(x)).sum().backward()  # sgn's backward hands on an efficient-zero tensor
        grads.append(x.grad)
    assert_same(grads[0], grads[2])
    assert_same(grads[1], grads[2])


@pytest.mark.parametrize("relu", [relu_ext.relu, relu_ext.ReLU(), lambda t: relu_ext.ReLUFunction.apply(t, False),
                                  relu_ext.ReLU(save_mask=True)])
def test_double_backward_gives_torchs_defined_zeros(relu):
    results = []
    for fn in (relu, torch.relu):
        x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sum(), x, retain_graph=True)
        g.sum().backward()
        results.append((gg, x.grad))
    assert results[0][1] is not None
    for mine, theirs in zip(*results):
        assert_same(mine, theirs)


def test_gradient_penalty_leaves_torchs_zero_grads():
    """A WGAN-GP style loss: the first layer's bias gets a zero .grad, not None, as with nn.ReLU."""
    def bias_grads(relu):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), relu, torch.nn.Linear(8, 1))
        x = torch.randn(16, 4, requires_grad=True)
        (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
        ((g.norm(2, dim=1) - 1) ** 2).mean().backward()
        return [p.grad for p in model.parameters()]

    for relu in (relu_ext.ReLU(), relu_ext.ReLU(save_mask=True)):
        for mine, theirs in zip(bias_grads(relu), bias_grads(torch.nn.ReLU())):
            assert (mine is None) == (theirs is None)
            if theirs is not None:
                assert_same(mine, theirs)


@pytest.mark.parametrize("after", [lambda y: y, lambda y: y.reshape(-1), lambda y: y.flatten(1), lambda y: y.t()],
                         ids=["same", "reshape", "flatten", "t"])
def test_a_leafs_grad_has_torchs_values_and_version(after):
    results = []
    for relu in (relu_ext.relu, lambda t: relu_ext.relu(t, save_mask=True), torch.relu):
        torch.manual_seed(0)
        w = torch.randn(64, 32, requires_grad=True)
        y = after(relu(w * 1))
        (y * torch.arange(y.numel(), dtype=torch.float32).view(y.shape)).sum().backward()
        results.append((w.grad, w.grad._version))
    for mine in results[:2]:
        assert_same(mine[0], results[2][0])
        assert mine[1] == results[2][1]


def test_compiled_autograd_training_step_matches_nn_relu():
    torch._dynamo.reset()
    params = []
    for relu in (relu_ext.ReLU(), relu_ext.ReLU(save_mask=True), torch.nn.ReLU()):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 20), relu, torch.nn.Linear(20, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(8, 10), torch.randn(8, 1)

        @torch.compile(backend="aot_eager")
        def step():
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        with torch._dynamo.config.patch(compiled_autograd=True):
            for _ in range(3):
                opt.zero_grad()
                step()
                opt.step()
        params.append([p.detach().clone() for p in model.parameters()])
    torch._dynamo.reset()
    for mine, masked, theirs in zip(*params):
        assert_same(mine, theirs)
        assert_same(masked, theirs)


def test_compiled_autograd_over_an_eager_graph():
    """compiled autograd walking relu_ext's own backward Nodes (the forward ran eagerly)."""
    torch._dynamo.reset()
    grads = []
    x0 = torch.randn(6, 7)
    for relu in (relu_ext.relu, lambda t: relu_ext.relu(t, save_mask=True), torch.relu):
        x = x0.clone().requires_grad_()
        loss = (relu(x * 2) * relu(x)).sum()
        with torch._dynamo.compiled_autograd._enable(torch.compile(backend="aot_eager")):
            loss.backward()
        grads.append(x.grad)
    torch._dynamo.reset()
    assert_same(grads[0], grads[2])
    assert_same(grads[1], grads[2])
