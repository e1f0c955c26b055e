"""torch.export with relu_ext in the model: save, load in a fresh process, dynamic shapes, run_decompositions, with
either setting of relu_ext.config.opaque_under_compile."""
import subprocess
import sys

import pytest
import torch
from torch import nn

import relu_ext
from conftest import RELUS, assert_same, simple_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")


def _relu_targets(graph_module):
    return {str(n.target) for n in graph_module.graph.nodes if n.op == "call_function" and "relu" in str(n.target)}


@pytest.mark.parametrize("make_relu", RELUS.values(), ids=list(RELUS))
def test_export_save_load_in_a_fresh_process(make_relu, opaque, tmp_path):
    model = simple_model(make_relu())
    x = torch.randn(4, 10)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    targets = _relu_targets(ep.graph_module)
    if opaque:
        assert any(t.startswith("relu_ext.") for t in targets), targets
    else:
        assert targets <= {"aten.relu.default", "aten.relu_.default"} and targets, targets
    path = tmp_path / "model.pt2"
    torch.export.save(ep, str(path))
    x7 = torch.randn(7, 10)
    torch.save(x7, tmp_path / "x.pt")
    # What a deploying process must import: nothing extra for the default, relu_ext for an opaque export.
    code = ("import sys, torch\n" + ("import relu_ext\n" if opaque else "") +
            f"ep = torch.export.load({str(path)!r})\n"
            f"torch.save(ep.module()(torch.load({str(tmp_path / 'x.pt')!r})), {str(tmp_path / 'y.pt')!r})\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert_same(torch.load(tmp_path / "y.pt"), simple_model(nn.ReLU())(x7))


def test_opaque_export_loaded_without_relu_ext_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(relu_ext.config, "opaque_under_compile", True)
    ep = torch.export.export(simple_model(relu_ext.ReLU()), (torch.randn(2, 10),))
    torch.export.save(ep, str(tmp_path / "m.pt2"))
    run = subprocess.run([sys.executable, "-c", f"import torch; torch.export.load({str(tmp_path / 'm.pt2')!r})"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    # torch 2.8's loader retries the file as its old format and reports that failure instead ("no item named
    # 'version'"): it still refuses the program.
    assert run.returncode != 0 and ("relu_ext" in run.stderr or "There is no item named 'version'" in run.stderr)


def test_run_decompositions_keeps_the_op(monkeypatch):
    monkeypatch.setattr(relu_ext.config, "opaque_under_compile", True)
    ep = torch.export.export(simple_model(relu_ext.ReLU()), (torch.randn(2, 10),)).run_decompositions()
    assert "relu_ext.relu.default" in _relu_targets(ep.graph_module)
    x = torch.randn(2, 10)
    assert_same(ep.module()(x), simple_model(nn.ReLU())(x))


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_strict_export_holds_what_non_strict_does(opaque, strict):
    """Strict export traces relu_ext's Python with Dynamo, non-strict runs it: the same graph."""
    ep = torch.export.export(simple_model(relu_ext.ReLU()), (torch.randn(2, 10),), strict=strict)
    assert _relu_targets(ep.graph_module) == {"relu_ext.relu.default" if opaque else "aten.relu.default"}
    x = torch.randn(2, 10)
    assert_same(ep.module()(x), simple_model(nn.ReLU())(x))
