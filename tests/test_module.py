"""relu_ext.ReLU as a drop-in for nn.ReLU, and replace_relu; bitwise equal results in real models and training."""
import copy
import io
import pickle

import pytest
import torch
from torch import nn

import relu_ext
from conftest import DEVICES, assert_same


class SimpleModel(nn.Module):
    """The seed's model: the one line to change is `self.relu`."""

    def __init__(self, relu=None):
        super().__init__()
        self.layer1 = nn.Linear(10, 20)
        self.relu = relu if relu is not None else nn.ReLU()
        self.layer2 = nn.Linear(20, 1)

    def forward(self, x):
        return self.layer2(self.relu(self.layer1(x)))


def test_seed_example():
    x = torch.tensor([[-1.0, 2.0, -0.5], [0.3, -0.8, 1.0]])
    expected = torch.tensor([[0.0, 2.0, 0.0], [0.3, 0.0, 1.0]])
    assert_same(relu_ext.ReLU()(x), expected)
    assert_same(relu_ext.ReLU()(x), nn.ReLU()(x))


def test_module_surface_matches_nn_relu():
    for inplace in (False, True):
        mine, theirs = relu_ext.ReLU(inplace), nn.ReLU(inplace)
        assert mine.inplace is inplace
        assert repr(mine) == repr(theirs) == ("ReLU(inplace=True)" if inplace else "ReLU()")
        assert list(mine.parameters()) == [] and list(mine.buffers()) == []
        assert mine.state_dict() == {}
        for clone in (copy.deepcopy(mine), pickle.loads(pickle.dumps(mine))):
            assert type(clone) is relu_ext.ReLU and clone.inplace is inplace
    assert relu_ext.ReLU(inplace=True).inplace and not relu_ext.ReLU().inplace


def test_simple_model_one_line_change_trains_bitwise_identically():
    torch.manual_seed(0)
    reference = SimpleModel()
    swapped = SimpleModel(relu=relu_ext.ReLU())
    swapped.load_state_dict(reference.state_dict())
    x = torch.randn(1, 10)
    assert_same(swapped(x), reference(x))

    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(64, 10, generator=g)
    targets = (inputs[:, :1] * 2 - inputs[:, 1:2]).relu() + 0.1 * torch.randn(64, 1, generator=g)
    runs = []
    for model in (reference, swapped):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(100):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        runs.append((torch.stack(losses), [p.detach().clone() for p in model.parameters()],
                     [p.grad.clone() for p in model.parameters()]))
    assert_same(runs[1][0], runs[0][0])
    assert runs[0][0][-1] < runs[0][0][0] / 2  # it did learn
    for mine, theirs in zip(runs[1][1] + runs[1][2], runs[0][1] + runs[0][2]):
        assert_same(mine, theirs)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True)),
            nn.ModuleList([nn.Conv2d(8, 8, 1), nn.ReLU()]),
        )
        self.heads = nn.ModuleDict({"a": nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 10), nn.ReLU(True))})

    def forward(self, x):
        x = self.features[2](self.features[1](self.features[0](x)))
        x = self.features[3](x)
        x = self.features[4][1](self.features[4][0](x))
        return self.heads["a"](x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_replace_relu_in_convnet_bitwise(device, channels_last):
    torch.manual_seed(0)
    reference = ConvNet().to(device)
    swapped = copy.deepcopy(reference)
    assert relu_ext.replace_relu(swapped) is swapped
    relus = [m for m in swapped.modules() if isinstance(m, (nn.ReLU, relu_ext.ReLU))]
    assert len(relus) == 4 and all(type(m) is relu_ext.ReLU for m in relus)
    assert [m.inplace for m in relus] == [True, True, False, True]
    x = torch.randn(4, 3, 8, 8, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        reference, swapped = (m.to(memory_format=torch.channels_last) for m in (reference, swapped))
    for train in (True, False):
        reference.train(train)
        swapped.train(train)
        outs = []
        for model in (reference, swapped):
            model.zero_grad()
            out = model(x)
            out.square().sum().backward()
            outs.append([out.detach()] + [p.grad.clone() for p in model.parameters()])
        for mine, theirs in zip(outs[1], outs[0]):
            assert_same(mine, theirs)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")  # torch's own, for TorchScript
@pytest.mark.parametrize("inplace", [False, True])
def test_torch_jit_script_and_save_load_like_nn_relu(inplace):
    """A model that scripts with nn.ReLU scripts with relu_ext.ReLU: the graph calls relu_ext's ops, and the scripted
    model (also saved and loaded) gives nn.ReLU's outputs and gradients."""
    results = []
    for relu in (nn.ReLU(inplace), relu_ext.ReLU(inplace)):
        torch.manual_seed(0)
        scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 8), relu, nn.Linear(8, 2)))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = scripted(x)
        out.sum().backward()
        results.append((out.detach(), x.grad, loaded(x.detach())))
        graph = str(scripted.inlined_graph)
    assert ("relu_ext::relu_" if inplace else "relu_ext::relu(") in graph
    for mine, theirs in zip(results[1], results[0]):
        assert_same(mine, theirs)


def test_replace_relu_is_idempotent_and_leaves_subclasses():
    class MyReLU(nn.ReLU):
        pass

    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.ReLU(inplace=True), MyReLU()))
    relu_ext.replace_relu(model)
    first = [type(m) for m in model.modules()]
    relu_ext.replace_relu(model)
    assert [type(m) for m in model.modules()] == first
    assert type(model[1][1]) is MyReLU
    assert type(relu_ext.replace_relu(nn.ReLU(inplace=True))) is relu_ext.ReLU
    assert relu_ext.replace_relu(nn.ReLU(inplace=True)).inplace
