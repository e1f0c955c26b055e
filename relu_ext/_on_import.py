"""DTensor's sharding strategies for the ops (relu_ext/_dtensor.py) are registered once torch.distributed.tensor is
imported: importing it from relu_ext would cost about 0.5 s at every `import relu_ext` (docs/PERFORMANCE.md)."""
import importlib.abc
import importlib.util
import sys

_MODULE = "torch.distributed.tensor"


class _OnImport(importlib.abc.MetaPathFinder):
    """Finds torch.distributed.tensor as the other finders do, and registers once the module has run."""

    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None:
            return None
        run = spec.loader.exec_module

        def run_then_register(module):
            run(module)
            _register()

        spec.loader.exec_module = run_then_register
        return spec


def _register():
    from . import _dtensor

    _dtensor.register()


def register():
    if _MODULE in sys.modules:
        _register()
    else:
        sys.meta_path.insert(0, _OnImport())
