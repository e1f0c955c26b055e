"""Loads relu_ext._C (which registers the relu_ext ops) once, or says what is wrong and how to fix it."""
import glob
import hashlib
import os

import torch

_REBUILD = "pip install --no-build-isolation --no-deps --force-reinstall ."  # in relu_ext's source folder


def _public(version):
    return version.split("+")[0]


def load_library():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from . import _C
    except ImportError as error:
        if "undefined symbol" in str(error):
            what = f"it was built against another torch than the installed {torch.__version__} ({error})"
        else:
            what = f"it is missing ({error})"
            if os.path.isdir(os.path.join(here, os.pardir, "csrc")):
                what += (f"; Python is importing relu_ext from its source folder {here}, which holds no build: run "
                         "from another folder, or build in place with `pip install --no-build-isolation -e .`")
        raise ImportError(f"relu_ext's compiled kernels (relu_ext._C) could not be loaded: {what}. "
                          f"Rebuild them with `{_REBUILD}`") from error
    if _public(_C.torch_version) != _public(torch.__version__):
        raise ImportError(f"relu_ext was built against torch {_C.torch_version} but torch {torch.__version__} is "
                          f"installed. Install torch {_public(_C.torch_version)} again, or rebuild relu_ext from its "
                          f"source with `{_REBUILD}`")
    csrc = os.path.join(here, os.pardir, "csrc")
    if os.path.isdir(csrc):  # an in-place (editable) build: are the sources still the ones it was built from?
        files = sorted(glob.glob(os.path.join(csrc, "**", "*.*"), recursive=True))
        digest = hashlib.sha256(b"".join(open(f, "rb").read() for f in files)).hexdigest()[:16]
        if digest != _C.source_hash:
            raise ImportError(f"relu_ext's compiled kernels are stale: the sources in {os.path.normpath(csrc)} "
                              "changed since they were built. Rebuild with `pip install --no-build-isolation -e .`")
    # torch.relu accepts uint16/32/64 from torch 2.15 on: relu_ext follows the installed torch, op by op.
    wide = (torch.uint16, torch.uint32, torch.uint64)
    _C._set_wide_unsigned_supported(all(torch_accepts(torch.relu, d) for d in wide),
                                    all(torch_accepts(_threshold_backward, d) for d in wide))
    return _C


def _threshold_backward(x):
    return torch.ops.aten.threshold_backward(x, x, 0)


def torch_accepts(fn, dtype):
    try:
        fn(torch.zeros(1, dtype=dtype))
    except (RuntimeError, NotImplementedError):
        return False
    return True
