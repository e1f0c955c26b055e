"""In place in every mode, as one table: each in-place entry of relu_ext (rows of ENTRIES) under each transform or
mode (rows of MODES) against torch.relu_ under the same mode, on the same inputs. A cell passes when both give the
same results bit for bit (outputs, gradients, tangents, the input's new values), or both raise the same exception
type with the same message. A new torch feature is one more row of MODES."""
import functools

import pytest
import torch
import torch.utils.checkpoint as cp
from torch.fx.experimental.proxy_tensor import make_fx

import relu_ext
from conftest import assert_same

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")

# Each takes a tensor, relus it in place and returns what the entry returns (the tensor itself, as torch.relu_).
ENTRIES = {
    "ReLU(inplace=True)": lambda t: relu_ext.ReLU(inplace=True)(t),
    "ReLU(inplace=True, save_mask=True)": lambda t: relu_ext.ReLU(inplace=True, save_mask=True)(t),
    "relu(inplace=True)": lambda t: relu_ext.relu(t, inplace=True),
    "relu(inplace=True, save_mask=True)": lambda t: relu_ext.relu(t, inplace=True, save_mask=True),
    "relu_": relu_ext.relu_,
    "relu_(save_mask=True)": lambda t: relu_ext.relu_(t, save_mask=True),
    "ReLUFunction.apply(inplace)": lambda t: relu_ext.ReLUFunction.apply(t, True),
    "torch.ops.relu_ext.relu_": torch.ops.relu_ext.relu_,
}
TORCH = torch.relu_


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)


def _fn(relu_, t):
    """In place on an intermediate, whose value is used again after the write: the alias must be followed."""
    u = t * 2 - 0.1
    out = relu_(u)
    return out * t + u


def _graph_input_fn(relu_, t):
    """In place on the graph's input itself."""
    relu_(t)
    return t * 3


def _layers():
    torch.manual_seed(0)
    return torch.nn.Linear(6, 8, dtype=torch.float64), torch.nn.Linear(8, 3, dtype=torch.float64)


def _grads_of(run):
    """run(l1, l2, x) -> loss; returns the loss, x's gradient and the layers' gradients."""
    l1, l2 = _layers()
    x = _inputs()[0].requires_grad_()
    loss = run(l1, l2, x)
    loss.backward()
    return [loss.detach(), x.grad] + [p.grad for p in (*l1.parameters(), *l2.parameters())]


def _model_loss(relu_, l1, l2, x):
    return l2(relu_(l1(x))).pow(2).sum()


def _eager(relu_):
    return _grads_of(functools.partial(_model_loss, relu_))


_SAVED = {torch.ops.aten.relu_.default, torch.ops.relu_ext.relu_.default, torch.ops.relu_ext.relu_mask_.default}


def _sac(save, relu_):
    def policy(ctx, op, *args, **kwargs):
        must = save and op in _SAVED
        return cp.CheckpointPolicy.MUST_SAVE if must else cp.CheckpointPolicy.PREFER_RECOMPUTE

    def run(l1, l2, x):
        return cp.checkpoint(functools.partial(_model_loss, relu_), l1, l2, x, use_reentrant=False,
                             context_fn=lambda: cp.create_selective_checkpoint_contexts(policy))
    return _grads_of(run)


def _checkpoint(reentrant, relu_):
    return _grads_of(lambda l1, l2, x: cp.checkpoint(functools.partial(_model_loss, relu_), l1, l2, x,
                                                     use_reentrant=reentrant))


class _InPlace(torch.nn.Module):
    def __init__(self, relu_):
        super().__init__()
        self.relu_ = relu_

    def forward(self, x):
        return self.relu_(x)


def _checkpoint_sequential(relu_):
    def run(l1, l2, x):
        model = torch.nn.Sequential(l1, _InPlace(relu_), l2)
        return cp.checkpoint_sequential(model, 2, x, use_reentrant=False).pow(2).sum()
    return _grads_of(run)


def _saved_tensor_hooks(relu_):
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        return _grads_of(functools.partial(_model_loss, relu_))


def _linearize(relu_):
    x, tangent = _inputs()
    out, jvp_fn = torch.func.linearize(functools.partial(_fn, relu_), x)
    return [out, jvp_fn(tangent), jvp_fn(tangent * -3)]


def _functionalize(relu_):
    x = _inputs()[0]
    out = torch.func.functionalize(functools.partial(_graph_input_fn, relu_))(x)
    return [out, x, torch.func.functionalize(functools.partial(_fn, relu_))(x)]


def _vmap(relu_):
    x = _inputs()[0]
    return [torch.func.vmap(functools.partial(_fn, relu_))(x), torch.func.vmap(functools.partial(_fn, relu_), 1)(x)]


def _grad(relu_):
    return [torch.func.grad(lambda t: _fn(relu_, t).sum())(_inputs()[0])]


def _vmap_grad(relu_):
    return [torch.func.vmap(torch.func.grad(lambda t: _fn(relu_, t).sum()))(_inputs()[0])]


def _jvp(relu_):
    return list(torch.func.jvp(functools.partial(_fn, relu_), (_inputs()[0],), (_inputs()[1],)))


def _jac(jac, relu_):
    return [jac(functools.partial(_fn, relu_))(_inputs()[0][0])]


def _make_fx(mode, relu_):
    x = _inputs()[0]
    graph = make_fx(functools.partial(_fn, relu_), tracing_mode=mode)(x)
    graph_input = make_fx(functools.partial(_graph_input_fn, relu_), tracing_mode=mode)(x.clone())
    y = x.clone()
    return [graph(x), graph_input(y), y]


def _export(relu_):
    x = _inputs()[0]
    exported = torch.export.export(_GraphInput(relu_), (x.clone(),))
    y = x.clone()
    return [exported.module()(y), y, torch.export.export(_Intermediate(relu_), (x,)).module()(x)]


class _GraphInput(torch.nn.Module):
    def __init__(self, relu_):
        super().__init__()
        self.relu_ = relu_

    def forward(self, x):
        return _graph_input_fn(self.relu_, x)


class _Intermediate(_GraphInput):
    def forward(self, x):
        return _fn(self.relu_, x)


def _compile(opaque, relu_):
    torch._dynamo.reset()
    before, relu_ext.config.opaque_under_compile = relu_ext.config.opaque_under_compile, opaque
    try:
        x = _inputs()[0]
        y = x.clone()
        out = torch.compile(functools.partial(_graph_input_fn, relu_), fullgraph=True)(y)
        l1, l2 = _layers()
        leaf = x.clone().requires_grad_()
        # Not fullgraph: Dynamo refuses an autograd.Function with a custom jvp there (ReLUFunction's), and runs it
        # eagerly otherwise; test_compile checks fullgraph=True for the module and the functions.
        loss = torch.compile(functools.partial(_model_loss, relu_))(l1, l2, leaf)
        loss.backward()
        return [out, y, torch.compile(functools.partial(_fn, relu_), fullgraph=True)(x), loss, leaf.grad,
                l1.weight.grad, l2.weight.grad]
    finally:
        relu_ext.config.opaque_under_compile = before
        torch._dynamo.reset()


def _version(relu_):
    x = _inputs()[0]
    before = x._version
    out = relu_(x)
    assert out is x
    return [torch.tensor(x._version - before), x]


def _leaf_requires_grad(view, relu_):
    """torch raises here; the values must be as before (raised before anything was written)."""
    leaf = _inputs()[0].requires_grad_()
    before = leaf.detach().clone()
    try:
        relu_(leaf[1:] if view else leaf)
    finally:
        assert torch.equal(leaf.detach(), before), "written before the error"


MODES = {
    "eager backward": _eager,
    "version counter": _version,
    "leaf that requires grad": functools.partial(_leaf_requires_grad, False),
    "view of a leaf that requires grad": functools.partial(_leaf_requires_grad, True),
    "checkpoint, reentrant": functools.partial(_checkpoint, True),
    "checkpoint, non-reentrant": functools.partial(_checkpoint, False),
    "selective checkpoint, saving relu": functools.partial(_sac, True),
    "selective checkpoint, recomputing": functools.partial(_sac, False),
    "checkpoint_sequential": _checkpoint_sequential,
    "saved tensor hooks": _saved_tensor_hooks,
    "func.linearize": _linearize,
    "func.functionalize": _functionalize,
    "func.vmap": _vmap,
    "func.grad": _grad,
    "func.vmap(grad)": _vmap_grad,
    "func.jvp": _jvp,
    "func.jacrev": functools.partial(_jac, torch.func.jacrev),
    "func.jacfwd": functools.partial(_jac, torch.func.jacfwd),
    "make_fx, real": functools.partial(_make_fx, "real"),
    "make_fx, fake": functools.partial(_make_fx, "fake"),
    "make_fx, symbolic": functools.partial(_make_fx, "symbolic"),
    "torch.export": _export,
    "torch.compile, fused": functools.partial(_compile, False),
    "torch.compile, opaque": functools.partial(_compile, True),
}


# Cells where torch itself refuses the entry, for every autograd.Function: the error must be torch's.
TORCH_LIMITS = {("func.functionalize", "ReLUFunction.apply(inplace)"): "NYI: Functionalize rule for custom_function"}


def _outcome(mode, relu_):
    try:
        return mode(relu_), None
    except Exception as error:  # noqa: BLE001 (compared with torch's below)
        return None, error


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("mode", list(MODES))
def test_in_place_as_torch(mode, entry):
    expected, expected_error = _outcome(MODES[mode], TORCH)
    if mode in ("selective checkpoint, saving relu", "leaf that requires grad", "view of a leaf that requires grad"):
        assert expected_error is not None  # the cells where torch raises: relu_ext must raise the same
    actual, actual_error = _outcome(MODES[mode], ENTRIES[entry])
    if (mode, entry) in TORCH_LIMITS:
        assert TORCH_LIMITS[mode, entry] in str(actual_error)
        return
    if expected_error is not None:
        assert actual_error is not None, f"torch raises {expected_error!r}, relu_ext returned"
        assert type(actual_error) is type(expected_error)
        assert str(expected_error).split("\n")[0] in str(actual_error)
        return
    if actual_error is not None:
        raise actual_error
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert_same(a, e)


@pytest.mark.parametrize("call", [lambda x: relu_ext.relu(x, save_mask=True), lambda x: relu_ext.relu_(x, save_mask=True),
                                  lambda x: relu_ext.relu(x), lambda x: relu_ext.relu_(x)])
def test_a_list_is_refused_with_a_type_error(call):
    with pytest.raises(TypeError, match="must be a Tensor, not list"):
        call([1.0])


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr,
                                    torch.sparse_bsc])
@pytest.mark.parametrize("save_mask", [False, True])
def test_relu__on_sparse_tensors_as_torch(layout, save_mask):
    dense = torch.tensor([[-1.0, 2.0, 0.0, -3.0], [0.5, 0.0, -0.25, 4.0]])
    blocks = {"blocksize": (1, 2)} if layout in (torch.sparse_bsr, torch.sparse_bsc) else {}
    mine, theirs = (dense.to_sparse(layout=layout, **blocks) for _ in range(2))
    assert relu_ext.relu_(mine, save_mask=save_mask) is mine
    torch.relu_(theirs)
    assert mine.layout == layout
    assert_same(mine.values(), theirs.values())
    assert_same(mine.to_dense(), theirs.to_dense())
