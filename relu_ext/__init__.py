"""relu_ext: hand-written CPU and CUDA ReLU kernels for PyTorch, bit for bit equal to torch.nn.ReLU.

    model = relu_ext.replace_relu(model)   # or use relu_ext.ReLU() where you would use nn.ReLU()
"""
import hashlib
import os

import torch

_REBUILD = "pip install --no-build-isolation --no-deps --force-reinstall ."  # run in relu_ext's source folder


def _load_library():
    """Imports relu_ext._C (which registers the relu_ext ops) once, or says what is wrong and how to fix it."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from . import _C
    except ImportError as error:
        if "undefined symbol" in str(error):
            what = f"it was built against another torch than the installed {torch.__version__} ({error})"
        else:
            what = f"it is missing ({error})"
            if os.path.isdir(os.path.join(here, os.pardir, "csrc")):
                what += (f"; note that Python is importing relu_ext from its source folder {here}, which holds no "
                         "build: run from another folder, or build in place with "
                         "`pip install --no-build-isolation -e .`")
        raise ImportError(f"relu_ext's compiled kernels (relu_ext._C) could not be loaded: {what}. "
                          f"Rebuild them with `{_REBUILD}`") from error
    if _C.torch_version != torch.__version__:
        raise ImportError(f"relu_ext was built against torch {_C.torch_version} but torch {torch.__version__} is "
                          f"installed. Rebuild it with `{_REBUILD}`")
    csrc = os.path.join(here, os.pardir, "csrc")
    if os.path.isdir(csrc):  # an in-place (editable) build: are the sources still the ones it was built from?
        files = sorted(f for f in os.listdir(csrc) if not f.startswith("."))
        digest = hashlib.sha256(b"".join(open(os.path.join(csrc, f), "rb").read() for f in files)).hexdigest()[:16]
        if digest != _C.source_hash:
            raise ImportError(f"relu_ext's compiled kernels are stale: the sources in {os.path.normpath(csrc)} "
                              "changed since they were built. Rebuild with "
                              "`pip install --no-build-isolation -e .`")
    return _C


_C = _load_library()
WITH_CUDA = bool(_C.with_cuda)

from .ops import ReLUFunction, relu, relu_  # noqa: E402  (after the ops are registered)
from .modules import ReLU, replace_relu  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ReLUFunction", "relu", "relu_", "ReLU", "replace_relu", "WITH_CUDA"]
