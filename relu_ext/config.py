"""relu_ext's one switch.

opaque_under_compile: what relu_ext.relu, relu_ and ReLU become under torch.compile and torch.export.
  False (the default): torch.relu / torch.relu_, which Inductor fuses with its neighbours (the bias add before a
    ReLU, for one) and which an exported program holds as plain aten ops. Values and gradients are torch's.
  True: the relu_ext ops themselves, as opaque calls of the hand-written kernels between Inductor's kernels.
Eager mode always runs the hand-written kernels. torch.compile guards on the setting, so a change recompiles. The
environment variable RELU_EXT_OPAQUE_UNDER_COMPILE=1 sets it at import.
"""
import os

opaque_under_compile = os.environ.get("RELU_EXT_OPAQUE_UNDER_COMPILE", "0") == "1"
