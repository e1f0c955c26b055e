"""torch.compile(fullgraph=True) through relu_ext: no graph break, results equal to eager."""
import pytest
import torch
from torch import nn

import relu_ext
from conftest import DEVICES, assert_same


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inplace", [False, True])
def test_compiled_model_forward_backward(device, inplace):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), relu_ext.ReLU(inplace=inplace), nn.Linear(20, 1)).to(device)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(16, 10, device=device)
    eager_out = model(x)
    eager_out.sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = compiled(x)
    out.sum().backward()
    assert_same(out.detach(), eager_out.detach())
    for p, g in zip(model.parameters(), eager_grads):
        assert_same(p.grad, g)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_functional_with_inductor(device):
    torch._dynamo.reset()

    def f(x):
        return relu_ext.relu(x * 2) + relu_ext.relu_(x.clone())

    x = torch.randn(33, 7, device=device).requires_grad_()
    compiled = torch.compile(f, fullgraph=True, dynamic=False)
    assert_same(compiled(x).detach(), f(x).detach())
    (g_compiled,) = torch.autograd.grad(compiled(x).sum(), x)
    (g_eager,) = torch.autograd.grad(f(x).sum(), x)
    assert_same(g_compiled, g_eager)


def test_no_graph_break():
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(lambda x: relu_ext.relu(x) * 3)(torch.randn(4, requires_grad=True))
    assert explanation.graph_break_count == 0
