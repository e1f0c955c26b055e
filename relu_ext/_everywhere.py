"""relu_ext.everywhere(): every relu call in a scope runs relu_ext's kernels, functional calls included, through a
torch function mode (torch's own way to intercept calls in a scope: thread-local, nested, and traced by
torch.compile)."""
import contextlib
import threading

import torch
from torch.overrides import TorchFunctionMode

from .functional import relu, relu_


def _functional_relu(save_mask, input, inplace=False):
    return relu(input, inplace=inplace, save_mask=save_mask)


def _relu(save_mask, input):
    return relu(input, save_mask=save_mask)


def _relu_(save_mask, input):
    return relu_(input, save_mask=save_mask)


# What each intercepted function becomes. nn.ReLU calls torch.nn.functional.relu.
_HANDLERS = {
    torch.relu: _relu, torch.Tensor.relu: _relu, torch.nn.functional.relu: _functional_relu,
    torch.relu_: _relu_, torch.Tensor.relu_: _relu_, torch.nn.functional.relu_: _relu_,
}


class _Everywhere(TorchFunctionMode):
    def __init__(self, save_mask):
        super().__init__()
        self.save_mask = save_mask

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func)
        # Anything else, and a call whose input is no tensor (torch's own error), goes to torch as it is.
        if handler is None or not (args and isinstance(args[0], torch.Tensor)):
            return func(*args, **kwargs)
        return handler(self.save_mask, *args, **kwargs)


class everywhere(contextlib.ContextDecorator):
    """Within the scope, torch.relu, torch.relu_, torch.nn.functional.relu and relu_, Tensor.relu and relu_ (and so
    every nn.ReLU) run relu_ext's kernels, with save_mask as given; relu_ext's own calls keep their settings.

        with relu_ext.everywhere(save_mask=True):   # or as a decorator: @relu_ext.everywhere()
            loss = model(x)

    The scope is the calling thread's, nests (the innermost setting wins) and ends with its block, an exception
    included."""

    def __init__(self, save_mask=False):
        self.save_mask = save_mask
        self._modes = threading.local()  # one object may be entered in several threads, or again inside itself

    def __enter__(self):
        mode = _Everywhere(self.save_mask)
        self._modes.__dict__.setdefault("stack", []).append(mode)
        mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._modes.stack.pop().__exit__(*exc)
