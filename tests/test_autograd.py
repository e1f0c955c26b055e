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
                             (relu_ext.ReLUFunction.apply, torch.relu), (torch.ops.relu_ext.relu, torch.relu)]:
        out_ext, g_ext = grads(fn_ext, x, upstream)
        out_torch, g_torch = grads(fn_torch, x, upstream)
        assert_same(out_ext, out_torch)
        assert_same(g_ext, g_torch)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_and_gradgradcheck(device):
    x = torch.randn(4, 7, dtype=torch.float64, device=device)
    x = (x + 0.05 * x.sign()).requires_grad_()  # away from the kink at 0, where finite differences mislead
    for fn in (relu_ext.relu, torch.ops.relu_ext.relu, lambda t: relu_ext.relu(t.clone(), inplace=True)):
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("device", DEVICES)
def test_double_backward_matches_torch(device):
    x = torch.randn(6, 5, dtype=torch.float64, device=device)
    v = torch.randn(6, 5, dtype=torch.float64, device=device)
    results = []
    for fn in (relu_ext.relu, torch.relu):
        xx = x.clone().requires_grad_()
        g = v.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(xx) * xx, xx, g, create_graph=True)
        gg = torch.autograd.grad(gx.sum(), (xx, g))
        results.append((gx, *gg))
    for mine, theirs in zip(*results):
        assert_same(mine.detach(), theirs.detach())


def test_inplace_on_leaf_that_requires_grad_raises_before_writing():
    x = torch.randn(5, requires_grad=True)
    before = x.detach().clone()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        relu_ext.relu_(x)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        relu_ext.relu(x[1:], inplace=True)
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
    for fn in (torch.relu_, relu_ext.relu_):
        base = leaf * 1
        view = make_view(base)
        before = base.detach().clone()
        with pytest.raises(RuntimeError) as error:
            fn(view)
        assert torch.equal(base.detach(), before)
        messages.append(str(error.value))
    assert messages[1] == messages[0]


def test_inplace_returns_input_bumps_version_and_backprops_like_torch():
    for fn in (relu_ext.relu_, torch.relu_):
        x = torch.randn(8, dtype=torch.float64, requires_grad=True)
        y = x * 2
        version = y._version
        out = fn(y)
        assert out is y and y._version > version
        y.sum().backward()
        expected = torch.where(x > 0, 2.0, 0.0).double()
        assert torch.equal(x.grad, expected)
    plain = torch.randn(8)
    version = plain._version
    assert relu_ext.relu_(plain) is plain and plain._version > version


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
    for fn in (relu_ext.relu_, torch.relu_, lambda t: relu_ext.ReLUFunction.apply(t, True)):
        x = x0.clone().requires_grad_()
        y = x * 1.5
        fn(y[1:, ::2])
        (y * torch.arange(24.0, dtype=torch.float64).view(4, 6)).sum().backward()
        grads.append(x.grad)
    assert_same(grads[0], grads[1])
    assert_same(grads[2], grads[1])


@pytest.mark.parametrize("fn", [relu_ext.relu, torch.ops.relu_ext.relu, lambda t: relu_ext.relu_(t * 1),
                                lambda t: relu_ext.ReLUFunction.apply(t, False)])
def test_torch_func_on_every_entry_point(fn):
    x = torch.randn(4, 6, dtype=torch.float64)
    assert_same(torch.func.grad(lambda t: (fn(t) * t).sum())(x), torch.func.grad(lambda t: (torch.relu(t) * t).sum())(x))
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


def test_vmap_over_relu_backward_in_place():
    grad, result = make_tensor((4, 6), torch.float32), torch.relu(make_tensor((4, 6), torch.float32, seed=1))

    def write(g, r):
        torch.ops.relu_ext.relu_backward_(g, r)
        return g

    threshold_backward = torch.ops.aten.threshold_backward
    assert_same(torch.func.vmap(write)(grad.clone(), result), threshold_backward(grad, result, 0))
    assert_same(torch.func.vmap(write, in_dims=1)(grad.t().clone(), result.t()), threshold_backward(grad, result, 0))
    assert_same(torch.func.vmap(write, in_dims=(0, None))(grad.clone(), result[0]),
                threshold_backward(grad, result[0].expand(4, 6), 0))
    with pytest.raises(RuntimeError, match="cannot write a result batched over vmap"):
        torch.func.vmap(write, in_dims=(None, 0))(grad[0].clone(), result)


# Forward mode: every entry point, out of place and in place, against torch's tangents.
_FORWARD_FNS = {
    "relu": (relu_ext.relu, torch.relu),
    "ReLU": (relu_ext.ReLU(), torch.nn.ReLU()),
    "torch.ops": (torch.ops.relu_ext.relu, torch.relu),
    "ReLUFunction": (lambda t: relu_ext.ReLUFunction.apply(t, False), torch.relu),
}
_FORWARD_INPLACE_FNS = {
    "relu_": (relu_ext.relu_, torch.relu_),
    "ReLU(inplace=True)": (relu_ext.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
    "torch.ops": (torch.ops.relu_ext.relu_, torch.relu_),
    "ReLUFunction": (lambda t: relu_ext.ReLUFunction.apply(t, True), torch.relu_),
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


# When nothing else can see the incoming gradient, relu's backward writes the result over it (relu_backward_) instead
# of a new tensor (csrc/relu_autograd.cpp, may_overwrite). The gradients must be torch's all the same, and memory
# anyone else can still see must not change. On the CPU it does so only for gradients of 2 MiB and up; the tests
# below lower that to 0 (writes_over_any_size) so that small tensors take the same path.

def relu_ext_ops_in(fn):
    """The relu_ext ops run by fn(), as the profiler records them (a profiler, unlike a dispatch mode, changes
    nothing about which op runs)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name.split("::")[1] for e in prof.events() if e.name.startswith("relu_ext::")}


@pytest.fixture
def writes_over_any_size():
    relu_ext._C._set_overwrite_min_bytes(0)
    yield
    relu_ext._C._set_overwrite_min_bytes(-1)


def _backward_through_relu(rows):
    x = make_tensor((rows, 512), torch.float32).requires_grad_()
    (relu_ext.relu(x) * torch.linspace(-1, 1, 512)).sum().backward()  # mul's backward: a gradient nobody else holds


def test_cpu_writes_over_only_gradients_of_2_mib_and_up():
    """The default: below 2 MiB a new gradient (measured faster in a training step there), from 2 MiB the incoming
    one written over."""
    assert relu_ext_ops_in(lambda: _backward_through_relu(1023)) == {"relu", "relu_backward"}
    assert relu_ext_ops_in(lambda: _backward_through_relu(1024)) == {"relu", "relu_backward_"}


def _conv_relu_conv(relu):
    return [torch.nn.Conv2d(3, 8, 3), relu, torch.nn.Conv2d(8, 4, 3)]


_MODELS = {  # relu's incoming gradient: conv's input gradient, in either layout, or (Flatten) a view of linear's
    "conv-nchw": (_conv_relu_conv, torch.contiguous_format),
    "conv-nhwc": (_conv_relu_conv, torch.channels_last),
    "flatten": (lambda relu: [torch.nn.Conv2d(3, 8, 3), relu, torch.nn.Flatten(), torch.nn.Linear(8 * 36, 1)],
                torch.contiguous_format),
}


def model_grads(model_name, relu_module, device):
    layers, memory_format = _MODELS[model_name]
    torch.manual_seed(0)
    model = torch.nn.Sequential(*layers(relu_module)).to(device=device, memory_format=memory_format)
    x = torch.randn(4, 3, 8, 8, device=device).contiguous(memory_format=memory_format)
    model(x).square().sum().backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.usefixtures("writes_over_any_size")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_name", _MODELS)
def test_training_backward_writes_over_the_incoming_gradient_with_torchs_values(device, model_name):
    expected = model_grads(model_name, torch.nn.ReLU(), device)
    got = []
    ops = relu_ext_ops_in(lambda: got.extend(model_grads(model_name, relu_ext.ReLU(), device)))
    assert ops == {"relu", "relu_backward_"}
    for g, e in zip(got, expected):
        assert_same(g, e)


def _kept_by_the_caller(x):
    upstream = torch.randn(x.shape)
    kept = upstream.clone()
    relu_ext.relu(x).backward(upstream)
    return upstream, kept


def _a_view_of_it_kept(x):
    upstream = torch.randn(x.numel())  # the gradient reaching relu is upstream.view(x.shape): other tensor, same memory
    kept = upstream.clone()
    relu_ext.relu(x).view(-1).backward(upstream)
    return upstream, kept


def _kept_by_a_hook(x):
    seen = []
    y = relu_ext.relu(x * 1)
    y.register_hook(seen.append)
    (y * 3).sum().backward()
    return seen[0], torch.full(x.shape, 3.0)


def _borrowed_from_numpy(x):
    memory = torch.randn(x.shape).numpy()
    kept = torch.tensor(memory)

    class Lend(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, grad):
            return torch.from_numpy(memory)

    Lend.apply(relu_ext.relu(x)).sum().backward()
    return torch.from_numpy(memory), kept


_GRADIENT_HOLDERS = {"caller": _kept_by_the_caller, "view": _a_view_of_it_kept, "hook": _kept_by_a_hook,
                     "numpy": _borrowed_from_numpy}


@pytest.mark.usefixtures("writes_over_any_size")
@pytest.mark.parametrize("holder", _GRADIENT_HOLDERS.values(), ids=list(_GRADIENT_HOLDERS))
def test_a_gradient_someone_else_holds_is_not_written(holder):
    x = make_tensor((64, 33), torch.float32).requires_grad_()
    returned = []
    assert "relu_backward_" not in relu_ext_ops_in(lambda: returned.extend(holder(x)))
    held, unchanged = returned
    assert_same(held, unchanged.view(held.shape))
    assert_same(x.grad, torch.ops.aten.threshold_backward(unchanged.view(x.shape), torch.relu(x.detach()), 0))


@pytest.mark.usefixtures("writes_over_any_size")
@pytest.mark.parametrize("relu_first", [True, False], ids=["relu-slice-first", "relu-slice-second"])
def test_a_slice_of_a_bigger_gradient_is_not_passed_on(relu_first):
    """cat's backward gives each input a slice of one gradient. Written over, the slice would become x.grad and keep
    the whole gradient alive; relu_backward gives x.grad its own memory, as torch does."""
    def run(relu):
        x, z = make_tensor((64, 20), torch.float32).requires_grad_(), torch.randn(64, 20, requires_grad=True)
        parts = [relu(x), z * 1] if relu_first else [z * 1, relu(x)]
        (torch.cat(parts) * 3).sum().backward()
        return x.grad

    grad, expected = run(relu_ext.relu), run(torch.relu)
    assert_same(grad, expected)
    assert grad.untyped_storage().nbytes() == expected.untyped_storage().nbytes() == grad.nbytes


@pytest.mark.usefixtures("writes_over_any_size")
def test_retain_grad_keeps_torchs_value():
    """retain_grad stores a copy (torch's hook clones), so relu's backward may still write over the gradient."""
    x = make_tensor((64, 33), torch.float32).requires_grad_()
    y = relu_ext.relu(x * 1)
    y.retain_grad()
    (y * 3).sum().backward()
    assert_same(y.grad, torch.full(x.shape, 3.0))
    assert_same(x.grad, torch.ops.aten.threshold_backward(torch.full(x.shape, 3.0), torch.relu(x.detach()), 0))


@pytest.mark.usefixtures("writes_over_any_size")
def test_module_backward_hooks_see_torchs_gradients():
    """Full backward hooks on relu's module and its neighbour keep the tensors they are given: the gradient relu
    received must still hold its values after relu's backward has run."""
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


@pytest.mark.usefixtures("writes_over_any_size")
def test_double_backward_keeps_the_gradient_it_differentiates():
    """With create_graph the gradient is part of the new graph: relu_backward, never written over."""
    x = make_tensor((64, 33), torch.float32).requires_grad_()
    ops = relu_ext_ops_in(lambda: torch.autograd.grad(relu_ext.relu(x).square().sum(), x, create_graph=True))
    assert ops == {"relu", "relu_backward"}


def test_writing_over_the_gradient_bumps_its_version():
    g, r = torch.randn(10), torch.relu(torch.randn(10))
    version = g._version
    torch.ops.relu_ext.relu_backward_(g, r)
    assert g._version == version + 1


@pytest.mark.usefixtures("writes_over_any_size")
def test_a_leafs_gradient_written_over_has_torchs_version():
    """relu's backward writes over the gradient mul's backward made; AccumulateGrad takes that tensor as x.grad, whose
    _version must then be what torch's fresh gradient has, not the count of relu_ext's write."""
    def run(relu):
        x = make_tensor((64, 33), torch.float32).requires_grad_()
        (relu(x) * torch.linspace(-1, 1, 33)).sum().backward()
        return x

    got = []
    assert relu_ext_ops_in(lambda: got.append(run(relu_ext.relu))) == {"relu", "relu_backward_"}
    x, expected = got[0], run(torch.relu)
    assert_same(x.grad, expected.grad)
    assert x.grad._version == expected.grad._version == 0
