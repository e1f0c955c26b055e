"""relu_ext.everywhere(): every relu call form in the scope runs relu_ext's ops, with torch's results; nothing changes
outside the scope; threads, nesting, exceptions, compile, no_grad and inference_mode."""
import os
import sys
import threading

import pytest
import torch
import torch.nn.functional as F
from torch.nn.functional import relu as relu_taken_before  # a reference taken before any scope
from torch.profiler import profile

import relu_ext
from conftest import assert_same

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CALLS = {
    "torch.relu": torch.relu,
    "torch.relu_": lambda t: torch.relu_(t * 1),
    "F.relu": F.relu,
    "F.relu(inplace=True)": lambda t: F.relu(t * 1, inplace=True),
    "F.relu_": lambda t: F.relu_(t * 1),
    "Tensor.relu": lambda t: t.relu(),
    "Tensor.relu_": lambda t: (t * 1).relu_(),
    "nn.ReLU": torch.nn.ReLU(),
    "nn.ReLU(inplace=True)": lambda t: torch.nn.ReLU(inplace=True)(t * 1),
    "reference taken before": relu_taken_before,
}
OPS = {"relu_ext::relu", "relu_ext::relu_", "relu_ext::relu_mask", "relu_ext::relu_mask_"}


def _relu_ops(fn, *args):
    with profile() as prof:
        fn(*args)
    return {e.name for e in prof.events() if "relu" in e.name}


def _results(call, x):
    x = x.detach().requires_grad_()
    out = call(x)
    (grad,) = torch.autograd.grad(out, x, torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape),
                                  create_graph=True)
    (grad2,) = torch.autograd.grad(grad.sum(), x, allow_unused=True, materialize_grads=True)
    return out, grad, grad2


@pytest.mark.parametrize("save_mask", [False, True])
@pytest.mark.parametrize("call", list(CALLS))
def test_each_call_form_runs_relu_ext_with_torchs_results(call, save_mask):
    x = torch.tensor([[-1.0, 2.0, -0.5], [0.3, -0.8, 1.0], [0.0, -0.0, float("nan")]], dtype=torch.float64)
    expected = _results(CALLS[call], x)
    with relu_ext.everywhere(save_mask=save_mask):
        actual = _results(CALLS[call], x)
        ops = _relu_ops(lambda: CALLS[call](x.detach().requires_grad_()))
    for a, e in zip(actual, expected):
        assert_same(a, e)
    assert ops and ops <= OPS, ops
    assert ("relu_ext::relu_mask" in ops or "relu_ext::relu_mask_" in ops) == save_mask
    assert _relu_ops(lambda: CALLS[call](x)) & OPS == set()  # torch's again after the scope


@pytest.mark.parametrize("dtype", [torch.int32, torch.bfloat16])
def test_other_dtypes_and_no_grad_and_inference_mode(dtype):
    x = (torch.randn(5, 7) * 10).to(dtype)
    for context in (torch.no_grad, torch.inference_mode):
        with context(), relu_ext.everywhere(save_mask=True):
            ops = _relu_ops(lambda: torch.relu(x))
            assert_same(torch.relu(x), x.clamp_min(0))
        assert ops == {"relu_ext::relu"}  # no mask without grad


def test_explicit_relu_ext_calls_keep_their_settings():
    x = torch.randn(8, requires_grad=True)
    with relu_ext.everywhere(save_mask=False):
        assert "relu_ext::relu_mask" in _relu_ops(relu_ext.ReLU(save_mask=True), x)
    with relu_ext.everywhere(save_mask=True):
        assert "relu_ext::relu_mask" not in _relu_ops(relu_ext.ReLU(), x)


def test_nesting_the_inner_setting_wins_and_the_outer_comes_back():
    x = torch.randn(8, requires_grad=True)
    scope = relu_ext.everywhere(save_mask=False)
    with scope:
        with relu_ext.everywhere(save_mask=True):
            assert "relu_ext::relu_mask" in _relu_ops(torch.relu, x)
            with scope:  # the same object entered again
                assert _relu_ops(torch.relu, x) == {"relu_ext::relu"}
            assert "relu_ext::relu_mask" in _relu_ops(torch.relu, x)
        assert _relu_ops(torch.relu, x) == {"relu_ext::relu"}
    assert _relu_ops(torch.relu, x) == {"aten::relu"}


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_the_scope_ends_when_an_exception_leaves_it(error):
    x = torch.randn(8)
    with pytest.raises(error):
        with relu_ext.everywhere():
            raise error()
    assert _relu_ops(torch.relu, x) == {"aten::relu"}
    assert not torch.overrides._is_torch_function_mode_enabled()


def test_as_a_decorator():
    @relu_ext.everywhere(save_mask=True)
    def step(x):
        return _relu_ops(torch.relu, x)

    x = torch.randn(8, requires_grad=True)
    assert "relu_ext::relu_mask" in step(x)
    assert _relu_ops(torch.relu, x) == {"aten::relu"}


def test_the_scope_is_the_threads_own():
    x = torch.randn(8)
    inside, other = threading.Event(), {}

    def other_thread():
        inside.wait()
        other["ops"] = _relu_ops(torch.relu, x)

    thread = threading.Thread(target=other_thread)
    thread.start()
    with relu_ext.everywhere():
        inside.set()
        thread.join()
        assert _relu_ops(torch.relu, x) == {"relu_ext::relu"}
    assert other["ops"] == {"aten::relu"}


def test_a_non_tensor_gets_torchs_error():
    with relu_ext.everywhere(), pytest.raises(TypeError):
        torch.relu([1.0])


@pytest.mark.parametrize("save_mask", [False, True])
def test_compiled_model_inside_the_scope_gives_the_compiled_nn_relu_models_results(save_mask):
    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 1))

    x = torch.randn(4, 10)
    torch._dynamo.reset()
    model = make()
    expected = torch.compile(model, fullgraph=True)(x)
    expected.sum().backward()
    torch._dynamo.reset()
    mine = make()
    with relu_ext.everywhere(save_mask=save_mask):
        actual = torch.compile(mine, fullgraph=True)(x)
    actual.sum().backward()
    torch._dynamo.reset()
    assert_same(actual, expected)
    for a, e in zip(mine.parameters(), model.parameters()):
        assert_same(a.grad, e.grad)


def _googlenet():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)


def _train_step(model, x):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = model(x).logsumexp(1).sum()
    loss.backward()
    opt.step()
    return [loss.detach()] + [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("save_mask", [False, True])
def test_functional_relu_model_trains_a_step_as_without_the_scope(save_mask):
    """GoogLeNet calls F.relu(x, inplace=True) in each of its 57 BasicConv2d blocks; no nn.ReLU to replace."""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = _train_step(_googlenet(), x)
    with relu_ext.everywhere(save_mask=save_mask):
        ops = _relu_ops(_googlenet(), x.requires_grad_())
        actual = _train_step(_googlenet(), x)
    assert ops == ({"relu_ext::relu_mask_"} if save_mask else {"relu_ext::relu_"})
    for a, e in zip(actual, expected):
        assert_same(a, e)


def test_save_mask_saves_memory_on_the_functional_relu_model():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
    from memory import saved_bytes  # benchmarks/memory.py, as it measures: distinct storages autograd saves

    model, x = _googlenet(), torch.randn(2, 3, 64, 64)
    plain = saved_bytes(model, x)
    with relu_ext.everywhere(save_mask=True):
        masked = saved_bytes(model, x)
    with relu_ext.everywhere(save_mask=False):
        assert saved_bytes(model, x) == plain
    assert masked < plain * 0.99  # 34.46 MB -> 33.72 MB measured
