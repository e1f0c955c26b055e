"""relu_ext.ReLU, a drop-in for torch.nn.ReLU, and replace_relu, which swaps it into a model."""
import torch
from torch.jit._builtins import _register_builtin

from .functional import _ENTRIES, _relu__entry, _relu_entry, _relu_save_mask__entry, _relu_save_mask_entry

_is_scripting = torch.jit.is_scripting  # a module-level name: torch.compile then guards one object, not a chain

# TorchScript compiles forward's calls of the plain entries as relu_ext's ops, as torch maps C functions of its own
# (torch/jit/_script.py), so that forward needs no TorchScript branch unless save_mask is set.
for _entries in _ENTRIES.values():
    _register_builtin(_entries[0], "relu_ext::relu")
    _register_builtin(_entries[1], "relu_ext::relu_")


class ReLU(torch.nn.Module):
    """Drop-in for torch.nn.ReLU: same constructor, attributes, repr and results, relu_ext's kernels."""

    __constants__ = ["inplace", "save_mask"]
    inplace: bool
    save_mask: bool

    def __init__(self, inplace: bool = False, save_mask: bool = False):
        """save_mask=True: the backward keeps one bit per element instead of the output (README: Saving memory)."""
        super().__init__()
        self.inplace = inplace
        self.save_mask = save_mask

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        # torch.compile guards every attribute and global read here on each call of the compiled model; the default
        # path reads two flags and one entry. The entries pass refused inputs to relu_ext.functional._refused.
        if self.save_mask:
            if _is_scripting():  # torch.jit.script compiles this branch only: the save_mask entries have no op
                mask = input.requires_grad and torch.is_grad_enabled()
                if self.inplace:
                    if mask:
                        torch.ops.relu_ext.relu_mask_(input)
                    else:
                        torch.ops.relu_ext.relu_(input)
                    return input
                return torch.ops.relu_ext.relu_mask(input)[0] if mask else torch.ops.relu_ext.relu(input)
            if self.inplace:
                _relu_save_mask__entry(input)
                return input
            return _relu_save_mask_entry(input)
        if self.inplace:
            _relu__entry(input)
            return input
        return _relu_entry(input)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}=True" for name in ("inplace", "save_mask") if getattr(self, name))


def replace_relu(module: torch.nn.Module, save_mask: bool = False) -> torch.nn.Module:
    """Swaps every torch.nn.ReLU (exactly that class, not subclasses) in `module`, at any depth, for relu_ext.ReLU with
    the same inplace flag and the given save_mask, in place. Returns the module (a relu_ext.ReLU if `module` itself
    is an nn.ReLU)."""
    if type(module) is torch.nn.ReLU:
        return _swap(module, save_mask)
    for name, child in module.named_children():
        if type(child) is torch.nn.ReLU:
            setattr(module, name, _swap(child, save_mask))
        else:
            replace_relu(child, save_mask)
    return module


def _swap(old, save_mask):
    new = ReLU(inplace=old.inplace, save_mask=save_mask)
    new.train(old.training)
    return new
