"""relu_ext.ReLU, a drop-in for torch.nn.ReLU, and replace_relu, which swaps it into a model."""
import torch

from .functional import relu


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
        if torch.jit.is_scripting():  # torch.jit.script compiles this branch only: the ops themselves
            mask = self.save_mask and input.requires_grad and torch.is_grad_enabled()
            if self.inplace:
                if mask:
                    torch.ops.relu_ext.relu_mask_(input)
                else:
                    torch.ops.relu_ext.relu_(input)
                return input
            return torch.ops.relu_ext.relu_mask(input)[0] if mask else torch.ops.relu_ext.relu(input)
        return relu(input, self.inplace, self.save_mask)

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
