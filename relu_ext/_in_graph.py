"""torch.compile (Dynamo) puts relu_ext's C entries (relu_ext/functional.py) into its graphs as they are, as it does
torch's own functions, instead of tracing relu_ext's Python, whose every global read would be a guard checked on each
call of the compiled model (docs/PERFORMANCE.md). The registration waits for torch._dynamo's import, which takes
longer than importing torch itself, so that importing relu_ext does not import it."""
import importlib.abc
import importlib.util
import sys


def _allow_in_graph(dynamo):
    from .functional import _ENTRIES

    for entries in _ENTRIES.values():
        for entry in entries:
            dynamo.allow_in_graph(entry)


class _OnDynamoImport(importlib.abc.MetaPathFinder):
    """Finds torch._dynamo as the other finders do, and registers the entries once its module has run."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch._dynamo":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def run_then_register(module):
            run(module)
            _allow_in_graph(module)

        spec.loader.exec_module = run_then_register
        return spec


def register():
    if "torch._dynamo" in sys.modules:
        _allow_in_graph(sys.modules["torch._dynamo"])
    else:
        sys.meta_path.insert(0, _OnDynamoImport())
