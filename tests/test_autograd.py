"""Autograd through relu_ext: gradients, double backward, forward mode, in-place rules, torch.func, autocast,
threads."""
import threading

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import relu_ext
from conftest import DEVICES, FLOAT_DTYPES, assert_same, make_tensor

# torch's forward mode scripts a helper of its own on first use (torch.autograd.forward_ad.make_dual), and
# torch.jit.script warns that it is deprecated: torch's warning, not relu_ext's.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def grads(fn, x, upstream):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (g,) = torch.autograd.grad(out, x, upstream)
    return out, g


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_matches_torch(device, dtype):
    x = make_tensor((5, 67), dtype, device)
    x.view(-1)[:4] = 0.0  # the gradient at exactly 0 is 0, as torch's
    upstream = make_tensor((5, 67), dtype, device, seed=3)
    for fn_ext, fn_torch in [(relu_ext.relu, torch.relu), (relu_ext.ReLU(), torch.nn.ReLU()),
                             (relu_ext.ReLUFunction.apply, torch.relu), (torch.ops.relu_ext.relu, torch.relu),
                             (relu_ext.ReLU(save_mask=True), torch.nn.ReLU()),
                             (lambda t: relu_ext.relu(t * 1, inplace=True, save_mask=True), torch.relu)]:
        out_ext, g_ext = grads(fn_ext, x, upstream)
        out_torch, g_torch = grads(fn_torch, x, upstream)
        assert_same(out_ext, out_torch)
        assert_same(g_ext, g_torch)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_and_gradgradcheck(device):
    x = torch.randn(4, 7, dtype=torch.float64, device=device)
    x = (x + 0.05 * x.sign()).requires_grad_()  # away from the kink at 0, where finite differences mislead
    for fn in (relu_ext.relu, torch.ops.relu_ext.relu, lambda t: relu_ext.relu(t.clone(), inplace=True),
               lambda t: relu_ext.relu(t, save_mask=True), lambda t: torch.ops.relu_ext.relu_mask(t)[0],
               lambda t: relu_ext.relu(t.clone(), inplace=True, save_mask=True)):
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_matches_torch(device):
    x = torch.randn(6, 5, dtype=torch.float64, device=device)
    v = torch.randn(6, 5, dtype=torch.float64, device=device)
    results = []
    for fn in (relu_ext.relu, lambda t: relu_ext.relu(t, save_mask=True), torch.relu):
        xx = x.clone().requires_grad_()
        g = v.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(xx) * xx, xx, g, create_graph=True)
        gg = torch.autograd.grad(gx.sum(), (xx, g))
        results.append((gx, *gg))
    for mine, masked, theirs in zip(*results):
        assert_same(mine.detach(), theirs.detach())
        assert_same(masked.detach(), theirs.detach())


def test_inplace_on_leaf_that_requires_grad_raises_before_writing():
    x = torch.randn(5, requires_grad=True)
    before = x.detach().clone()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        relu_ext.relu_(x)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        relu_ext.relu(x[1:], inplace=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        relu_ext.relu_(x, save_mask=True)
    assert torch.equal(x.detach(), before)
    with torch.no_grad():  # allowed, as for torch
        relu_ext.relu_(x)
    assert torch.equal(x.detach(), torch.relu(before))


class _Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g


def _view_made_in_no_grad(base):
    with torch.no_grad():
        return base[1]


# Views whose autograd history an in-place op may not rewrite: torch refuses each with its own message.
_FORBIDDEN_VIEWS = {
    "custom Function output": lambda base: _Identity.apply(base),
    "one of several views (unbind)": lambda base: base.unbind(0)[1],
    "made in no_grad": _view_made_in_no_grad,
}


@pytest.mark.parametrize("make_view", _FORBIDDEN_VIEWS.values(), ids=list(_FORBIDDEN_VIEWS))
def test_inplace_on_a_view_torch_refuses_raises_torchs_error_before_writing(make_view):
    leaf = torch.randn(4, 3, requires_grad=True)
    messages = []
    for fn in (torch.relu_, relu_ext.relu_, lambda t: relu_ext.relu_(t, save_mask=True)):
        base = leaf * 1
        view = make_view(base)
        before = base.detach().clone()
        with pytest.raises(RuntimeError) as error:
            fn(view)
        assert torch.equal(base.detach(), before)
        messages.append(str(error.value))
    assert messages[2] == messages[1] == messages[0]


def test_inplace_returns_input_bumps_version_and_backprops_like_torch():
    for fn in (relu_ext.relu_, lambda t: relu_ext.relu_(t, save_mask=True), torch.relu_):
        x = torch.randn(8, dtype=torch.float64, requires_grad=True)
        y = x * 2
        version = y._version
        out = fn(y)
        assert out is y and y._version == version + 1
        y.sum().backward()
        expected = torch.where(x > 0, 2.0, 0.0).double()
        assert torch.equal(x.grad, expected)
    plain = torch.randn(8)
    version = plain._version
    assert relu_ext.relu_(plain) is plain and plain._version > version
    assert relu_ext.relu_(plain, save_mask=True) is plain and plain._version == version + 2


def test_modifying_saved_output_makes_backward_raise():
    for relu in (relu_ext.relu, torch.relu):
        x = torch.randn(5, requires_grad=True)
        y = relu(x)
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_inplace_on_overlapping_memory_raises_before_writing():
    base = torch.tensor([-1.0, 2.0])
    x = base[:1].expand(4)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        relu_ext.relu_(x)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.relu_(x)
    assert torch.equal(base, torch.tensor([-1.0, 2.0]))


def test_inplace_on_a_view_backprops_like_torch():
    grads = []
    x0 = torch.randn(4, 6, dtype=torch.float64)
    for fn in (relu_ext.relu_, torch.relu_, lambda t: relu_ext.ReLUFunction.apply(t, True),
               lambda t: relu_ext.relu_(t, save_mask=True)):
        x = x0.clone().requires_grad_()
        y = x * 1.5
        fn(y[1:, ::2])
        (y * torch.arange(24.0, dtype=torch.float64).view(4, 6)).sum().backward()
        grads.append(x.grad)
    for g in grads:
        assert_same(g, grads[1])


@pytest.mark.parametrize("fn", [relu_ext.relu, torch.ops.relu_ext.relu, lambda t: relu_ext.relu_(t * 1),
                                lambda t: relu_ext.relu(t, save_mask=True),
                                lambda t: relu_ext.relu_(t * 1, save_mask=True),
                                lambda t: relu_ext.ReLUFunction.apply(t, False)])
def test_torch_func_on_every_entry_point(fn):
    x = torch.randn(4, 6, dtype=torch.float64)
    expected = torch.func.grad(lambda t: (torch.relu(t) * t).sum())(x)
    assert_same(torch.func.grad(lambda t: (fn(t) * t).sum())(x), expected)
    assert_same(torch.func.vmap(fn)(x), torch.relu(x))


def test_torch_func_grad_vmap_jacrev():
    x = torch.randn(4, 6, dtype=torch.float64)
    for transform in (torch.func.grad, torch.func.jacrev):
        f_ext = transform(lambda t: relu_ext.relu(t).sum() if transform is torch.func.grad else relu_ext.relu(t))
        f_torch = transform(lambda t: torch.relu(t).sum() if transform is torch.func.grad else torch.relu(t))
        assert_same(f_ext(x), f_torch(x))
    for in_dims in (0, 1):
        assert_same(torch.func.vmap(relu_ext.relu, in_dims=in_dims)(x), torch.func.vmap(torch.relu, in_dims=in_dims)(x))
    per_sample = torch.func.vmap(torch.func.grad(lambda t: (relu_ext.relu(t) * t).sum()))(x)
    expected = torch.func.vmap(torch.func.grad(lambda t: (torch.relu(t) * t).sum()))(x)
    assert_same(per_sample, expected)


# Forward mode: every entry point, out of place and in place, against torch's tangents.
_FORWARD_FNS = {
    "relu": (relu_ext.relu, torch.relu),
    "ReLU": (relu_ext.ReLU(), torch.nn.ReLU()),
    "torch.ops": (torch.ops.relu_ext.relu, torch.relu),
    "ReLUFunction": (lambda t: relu_ext.ReLUFunction.apply(t, False), torch.relu),
    "relu_mask": (lambda t: torch.ops.relu_ext.relu_mask(t)[0], torch.relu),
}
_FORWARD_INPLACE_FNS = {
    "relu_": (relu_ext.relu_, torch.relu_),
    "ReLU(inplace=True)": (relu_ext.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
    "torch.ops": (torch.ops.relu_ext.relu_, torch.relu_),
    "ReLUFunction": (lambda t: relu_ext.ReLUFunction.apply(t, True), torch.relu_),
    "relu_(save_mask=True)": (lambda t: relu_ext.relu_(t, save_mask=True), torch.relu_),
}


def _dual_run(fn, x, tangent, inplace=False, view=False):
    """fn on a dual tensor (x, tangent), or on a view of one; returns (primal, tangent) of what fn gives and, in
    place, of the base the view came from."""
    with fwAD.dual_level():
        dual = fwAD.make_dual(x.clone(), tangent.clone())
        arg = dual[1:] if view else dual
        out = fn(arg)
        if inplace:
            assert out is arg or out is None
            out = dual
        primal, out_t = fwAD.unpack_dual(out)
        return primal.clone(), out_t.clone()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("fns", _FORWARD_FNS.values(), ids=list(_FORWARD_FNS))
def test_forward_mode_matches_torch(device, dtype, fns):
    x = make_tensor((5, 67), dtype, device)
    x.view(-1)[:4] = 0.0
    tangent = make_tensor((5, 67), dtype, device, seed=3)
    mine, theirs = (_dual_run(fn, x, tangent) for fn in fns)
    assert_same(mine[0], theirs[0])
    assert_same(mine[1], theirs[1])


@pytest.mark.parametrize("view", [False, True], ids=["tensor", "view"])
@pytest.mark.parametrize("fns", _FORWARD_INPLACE_FNS.values(), ids=list(_FORWARD_INPLACE_FNS))
def test_forward_mode_in_place_updates_the_tangent_like_torch(fns, view):
    x = make_tensor((5, 67), torch.float64)
    tangent = make_tensor((5, 67), torch.float64, seed=3)
    mine, theirs = (_dual_run(fn, x, tangent, inplace=True, view=view) for fn in fns)
    assert_same(mine[0], theirs[0])
    assert_same(mine[1], theirs[1])


@pytest.mark.parametrize("with_tangent", ["grad_output", "result", "both"])
def test_forward_mode_through_relu_backward_matches_threshold_backward(with_tangent):
    g, r = torch.randn(6, 5, dtype=torch.float64), torch.relu(torch.randn(6, 5, dtype=torch.float64))
    g_t, r_t = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    results = []
    for fn in (torch.ops.relu_ext.relu_backward, lambda a, b: torch.ops.aten.threshold_backward(a, b, 0)):
        with fwAD.dual_level():
            a = fwAD.make_dual(g, g_t) if with_tangent in ("grad_output", "both") else g
            b = fwAD.make_dual(r, r_t) if with_tangent in ("result", "both") else r
            primal, tangent = fwAD.unpack_dual(fn(a, b))
            results.append((primal.clone(), tangent.clone()))
    assert_same(results[0][0], results[1][0])
    assert_same(results[0][1], results[1][1])


def test_torch_func_jvp_jacfwd_and_forward_over_reverse_match_torch():
    x = torch.randn(4, 6, dtype=torch.float64)
    x[0, :2] = 0.0
    v = torch.randn(4, 6, dtype=torch.float64)
    for ext, ref in [(relu_ext.relu, torch.relu), (lambda t: relu_ext.relu_(t * 1), lambda t: torch.relu_(t * 1))]:
        for mine, theirs in [
            (torch.func.jvp(ext, (x,), (v,)), torch.func.jvp(ref, (x,), (v,))),
            (torch.func.jacfwd(ext)(x[0]), torch.func.jacfwd(ref)(x[0])),
            (torch.func.hessian(lambda t: (ext(t) * t).sum())(x[0]),
             torch.func.hessian(lambda t: (ref(t) * t).sum())(x[0])),
            (torch.func.jvp(torch.func.grad(lambda t: (ext(t) * t).sum()), (x,), (v,)),
             torch.func.jvp(torch.func.grad(lambda t: (ref(t) * t).sum()), (x,), (v,))),
        ]:
            mine, theirs = (r if isinstance(r, tuple) else (r,) for r in (mine, theirs))
            assert len(mine) == len(theirs)
            for a, b in zip(mine, theirs):
                assert_same(a, b)


def test_autocast_cpu_bfloat16_matches_nn_relu():
    torch.manual_seed(0)
    lin = torch.nn.Linear(10, 20)
    x = torch.randn(8, 10)
    outs = []
    for act in (torch.nn.ReLU(), relu_ext.ReLU()):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = act(lin(x))
        y.float().sum().backward()
        outs.append((y, lin.weight.grad.clone()))
        lin.zero_grad()
    assert outs[0][0].dtype == torch.bfloat16
    assert_same(outs[1][0], outs[0][0])
    assert_same(outs[1][1], outs[0][1])


def test_threads_forward_backward_concurrently():
    errors = []

    def work(seed):
        try:
            for i in range(30):
                x = torch.randn(1000 + seed * 7 + i, dtype=torch.float64, requires_grad=True)
                y = relu_ext.relu(x)
                (y * y).sum().backward()
                assert torch.equal(y.detach(), torch.relu(x.detach()))
                assert torch.equal(x.grad, torch.where(x > 0, 2 * x, 0.0).detach())
                z = x.detach().clone()
                relu_ext.relu_(z)
                assert torch.equal(z, torch.relu(x.detach()))
        except Exception as error:  # noqa: BLE001  (reported below, in the main thread)
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_retain_grad_keeps_torchs_value():
    x = make_tensor((64, 33), torch.float32).requires_grad_()
    y = relu_ext.relu(x * 1)
    y.retain_grad()
    (y * 3).sum().backward()
    assert_same(y.grad, torch.full(x.shape, 3.0))
    assert_same(x.grad, torch.ops.aten.threshold_backward(torch.full(x.shape, 3.0), torch.relu(x.detach()), 0))


def test_module_backward_hooks_see_torchs_gradients():
    """Full backward hooks on relu's module and its neighbour see the tensors torch's would, after backward too."""
    def run(relu):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 20), relu, torch.nn.Linear(20, 1))
        seen = {}
        model[1].register_full_backward_pre_hook(lambda m, gout: seen.update(pre=gout[0]))
        model[1].register_full_backward_hook(lambda m, gin, gout: seen.update(relu_in=gin[0], relu_out=gout[0]))
        model[2].register_full_backward_hook(lambda m, gin, gout: seen.update(next_in=gin[0]))
        model(torch.randn(64, 10)).square().sum().backward()
        return seen, [p.grad for p in model.parameters()]

    (seen, grads), (seen_torch, grads_torch) = run(relu_ext.ReLU()), run(torch.nn.ReLU())
    assert seen.keys() == seen_torch.keys() == {"pre", "relu_in", "relu_out", "next_in"}
    for name in seen:
        assert_same(seen[name], seen_torch[name])
    for g, e in zip(grads, grads_torch):
        assert_same(g, e)
