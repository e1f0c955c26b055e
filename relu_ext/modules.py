"""relu_ext.ReLU, a drop-in for torch.nn.ReLU, and replace_relu, which swaps it into a model."""
import torch

from .functional import relu

# Module-level names, so that torch.compile guards one object each here rather than a chain through `torch`.
_is_scripting = torch.jit.is_scripting


class ReLU(torch.nn.Module):
    """Drop-in for torch.nn.ReLU: same constructor, attributes, repr and results, relu_ext's kernels."""

    __constants__ = ["inplace"]
    inplace: bool

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if _is_scripting():  # torch.jit.script compiles this branch only (relu() is Python only)
            if self.inplace:
                torch.ops.relu_ext.relu_(input)
                return input
            return torch.ops.relu_ext.relu(input)
        return relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


def replace_relu(module: torch.nn.Module) -> torch.nn.Module:
    """Swaps every torch.nn.ReLU (exactly that class, not subclasses) in `module`, at any depth, for relu_ext.ReLU with
    the same inplace flag, in place. Returns the module (a relu_ext.ReLU if `module` itself is an nn.ReLU)."""
    if type(module) is torch.nn.ReLU:
        return _swap(module)
    for name, child in module.named_children():
        if type(child) is torch.nn.ReLU:
            setattr(module, name, _swap(child))
        else:
            replace_relu(child)
    return module


def _swap(old):
    new = ReLU(inplace=old.inplace)
    new.train(old.training)
    return new
