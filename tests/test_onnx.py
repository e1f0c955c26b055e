"""ONNX with relu_ext in the model: both exporters give a plain Relu, onnx.checker accepts the file, onnxruntime runs
it. Skipped where onnx, onnxscript or onnxruntime is not installed (pip install '.[onnx]')."""
import pytest
import torch

from torch import nn

import relu_ext
from conftest import RELUS, simple_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx onnxscript onnxruntime)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("make_relu", RELUS.values(), ids=list(RELUS))
def test_onnx_export_is_a_plain_relu_and_runs_in_onnxruntime(make_relu, dynamo, opaque, tmp_path):
    if dynamo:
        pytest.importorskip("onnxscript", reason="onnxscript is not installed")
    model = simple_model(make_relu())
    x = torch.randn(5, 10)
    path = str(tmp_path / "m.onnx")
    # An opaque export holds relu_ext.relu: the dynamo exporter takes relu_ext's translation for it.
    table = {"custom_translation_table": relu_ext.onnx_translation_table()} if dynamo and opaque else {}
    torch.onnx.export(model, (x,), path, dynamo=dynamo, input_names=["x"], **table,
                      dynamic_axes=None if dynamo else {"x": {0: "batch"}},
                      dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamo else None)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Relu") == 1, ops
    assert not any(node.domain.startswith("relu_ext") for node in proto.graph.node)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x9 = torch.randn(9, 10)
    (out,) = session.run(None, {session.get_inputs()[0].name: x9.numpy()})
    # onnxruntime's GEMMs may round differently from torch's: equal to the last ulp or two, not bitwise
    torch.testing.assert_close(torch.from_numpy(out), simple_model(nn.ReLU())(x9), rtol=1e-6, atol=1e-6)
