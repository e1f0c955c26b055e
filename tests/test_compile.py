"""torch.compile(fullgraph=True) through relu_ext with either setting of relu_ext.config.opaque_under_compile: no
graph break, the values and gradients of the same model compiled with nn.ReLU (fused) or run eagerly (opaque)."""
import subprocess
import sys

import pytest
import torch
from functorch.compile import make_boxed_func
from torch import nn
from torch._dynamo.backends.common import aot_autograd

import relu_ext
from conftest import DEVICES, assert_same


def _step(model, x):
    out = model(x)
    out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def _model(relu, device):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), relu, nn.Linear(20, 1)).to(device)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inplace", [False, True])
def test_compiled_model_forward_backward(device, inplace, backend, opaque):
    x = torch.randn(16, 10, device=device)
    mine = _step(torch.compile(_model(relu_ext.ReLU(inplace=inplace), device), fullgraph=True, backend=backend), x)
    # Opaque: the hand-written kernels run as in eager mode. Fused: Inductor's own relu, as for nn.ReLU.
    reference = _model(nn.ReLU(inplace=inplace), device)
    theirs = _step(reference if opaque else torch.compile(reference, fullgraph=True, backend=backend), x)
    # Opaque under Inductor: relu is bitwise the eager one, but Inductor's Linear and loss kernels round their own way.
    same = assert_same if backend == "aot_eager" or not opaque else torch.testing.assert_close
    same(mine[0], theirs[0])
    for a, b in zip(mine[1], theirs[1]):
        same(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_functional_with_inductor(device, opaque):
    def f(relu, relu_):
        return lambda x: relu(x * 2) + relu_(x.clone())

    x = torch.randn(33, 7, device=device).requires_grad_()
    mine = torch.compile(f(relu_ext.relu, relu_ext.relu_), fullgraph=True, dynamic=False)
    reference = f(torch.relu, torch.relu_)
    if not opaque:
        reference = torch.compile(reference, fullgraph=True, dynamic=False)
    assert_same(mine(x).detach(), reference(x).detach())
    assert_same(torch.autograd.grad(mine(x).sum(), x)[0], torch.autograd.grad(reference(x).sum(), x)[0])


def test_the_graph_holds_torchs_relu_or_relu_exts_op(opaque):
    """What Inductor is given (AOT autograd's forward and backward graphs): torch's relu and threshold_backward, the
    graphs nn.ReLU gives, by default; relu_ext's ops with opaque_under_compile."""
    graphs = []

    def compiler(gm, example_inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    x = torch.randn(4, requires_grad=True)
    f = torch.compile(lambda x: relu_ext.ReLU()(x) * 3, backend=aot_autograd(fw_compiler=compiler), fullgraph=True)
    f(x).sum().backward()
    targets = {str(n.target) for gm in graphs for n in gm.graph.nodes if n.op == "call_function"}
    ours = {"relu_ext.relu.default", "relu_ext.relu_backward.default"}
    assert (ours if opaque else {"aten.relu.default", "aten.threshold_backward.default"}) <= targets, targets
    assert any("relu_ext" in t for t in targets) == opaque, targets


@pytest.mark.parametrize("caller", [relu_ext.relu, relu_ext.ReLU()], ids=["functional", "module"])
def test_a_change_of_the_setting_recompiles(monkeypatch, caller):
    """relu_ext reads the setting while Dynamo traces it; Dynamo guards on it (and its caches key on it)."""
    f = torch.compile(lambda x: caller(x) + 1, fullgraph=True)
    x = torch.randn(5, requires_grad=True)
    with torch._inductor.utils.fresh_inductor_cache():
        for opaque in (False, True, False):
            monkeypatch.setattr(relu_ext.config, "opaque_under_compile", opaque)
            _, (code, *_) = torch._inductor.utils.run_and_get_code(lambda: f(x).sum().backward())
            assert ("relu_ext" in code) == opaque


def test_relu_ext_imported_before_torch_dynamo(tmp_path):
    """The usual order: importing relu_ext does not import torch._dynamo, and a model compiled later traces without a
    graph break (fullgraph=True would raise at one)."""
    code = ("import sys, torch, relu_ext\n"
            "assert 'torch._dynamo' not in sys.modules\n"
            "f = torch.compile(lambda x: relu_ext.ReLU()(x) * 3, fullgraph=True, backend='eager')\n"
            "print(f(torch.tensor([-1.0, 2.0])).tolist())\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["[0.0,", "6.0]"]


def test_no_graph_break(opaque):
    explanation = torch._dynamo.explain(lambda x: relu_ext.relu(x) * 3)(torch.randn(4, requires_grad=True))
    assert explanation.graph_break_count == 0
