"""Registrations that wait for a torch module that importing relu_ext should not import, since it takes longer than
importing torch itself: torch._dynamo (torch.compile puts relu_ext's C entries, relu_ext/functional.py, into its
graphs as they are, as it does torch's own functions, instead of tracing relu_ext's Python, whose every global read
would be a guard checked on each call of the compiled model; docs/PERFORMANCE.md) and torch.distributed.tensor
(DTensor's sharding strategies, relu_ext/_dtensor.py). Each runs at once if its module is already imported."""
import importlib.abc
import importlib.util
import sys


def _allow_in_graph(dynamo):
    from .functional import _ENTRIES

    for entries in _ENTRIES.values():
        for entry in entries:
            dynamo.allow_in_graph(entry)


def _register_sharding(dtensor):
    from . import _dtensor

    _dtensor.register()


_ON_IMPORT = {"torch._dynamo": _allow_in_graph, "torch.distributed.tensor": _register_sharding}


class _OnImport(importlib.abc.MetaPathFinder):
    """Finds the modules of _ON_IMPORT as the other finders do, and registers once each module has run."""

    def __init__(self, waiting):
        self.waiting = waiting

    def find_spec(self, name, path=None, target=None):
        if name not in self.waiting:
            return None
        register = self.waiting.pop(name)
        if not self.waiting:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def run_then_register(module):
            run(module)
            register(module)

        spec.loader.exec_module = run_then_register
        return spec


def register():
    waiting = {}
    for name, register_for in _ON_IMPORT.items():
        if name in sys.modules:
            register_for(sys.modules[name])
        else:
            waiting[name] = register_for
    if waiting:
        sys.meta_path.insert(0, _OnImport(waiting))
