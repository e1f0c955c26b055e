"""relu_ext: hand-written CPU and CUDA ReLU kernels for PyTorch, bit for bit equal to torch.nn.ReLU.

    model = relu_ext.replace_relu(model)   # or relu_ext.ReLU() wherever you would write nn.ReLU()
"""
from ._loader import load_library

_C = load_library()
WITH_CUDA = bool(_C.with_cuda)

from . import _meta_registrations, _export, config  # noqa: E402,F401  (fake kernels, vmap, ONNX; the switch)
from ._export import onnx_translation_table  # noqa: E402
from .functional import ReLUFunction, relu, relu_  # noqa: E402
from .modules import ReLU, replace_relu  # noqa: E402
from ._everywhere import everywhere  # noqa: E402
from . import _on_import  # noqa: E402

_on_import.register()

__version__ = "0.2.0"
__all__ = ["ReLUFunction", "relu", "relu_", "ReLU", "replace_relu", "everywhere", "WITH_CUDA", "onnx_translation_table"]
