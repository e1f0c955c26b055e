"""relu_ext's one switch.

opaque_under_compile: what relu_ext.relu, relu_ and ReLU become under torch.compile and torch.export.
  False (the default): torch.relu / torch.relu_, which Inductor fuses with its neighbours (the bias add before a
    ReLU, for one) and which an exported program holds as plain aten ops. Values and gradients are torch's.
  True: the relu_ext ops themselves, as opaque calls of the hand-written kernels between Inductor's kernels.
Eager mode always runs the hand-written kernels. Setting it points relu_ext at the C entries made for that setting,
which torch.compile guards on and puts in its graph (relu_ext/functional.py), so a change recompiles. The
environment variable RELU_EXT_OPAQUE_UNDER_COMPILE=1 sets it at import.
"""
import os
import sys
import types


class _Config(types.ModuleType):
    _opaque = os.environ.get("RELU_EXT_OPAQUE_UNDER_COMPILE", "0") == "1"

    @property
    def opaque_under_compile(self) -> bool:
        return self._opaque

    @opaque_under_compile.setter
    def opaque_under_compile(self, value: bool) -> None:
        from . import functional, modules

        self._opaque = bool(value)
        functional._use_entries(self._opaque, vars(functional), vars(modules))


sys.modules[__name__].__class__ = _Config  # a module whose attribute is a property (the setter above)
