"""DTensor (tensor parallel): the ops' sharding strategies, through torch's public register_sharding. relu and its
backward are elementwise, so each keeps its input's Shard(d) or Replicate placement; a Partial input is reduced
first (relu(a + b) is not relu(a) + relu(b)), by DTensor's redistribution, and in place on one raises as DTensor
raises for torch.relu_. The mask ops have no strategy: a packed mask has no global layout (functional.py's
save_mask path keeps each shard's own mask on its local tensor instead)."""
import torch
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.experimental import register_sharding


def _elementwise(*inputs):
    """Output and every tensor input on the same placement: Replicate, or Shard(d). A Partial input may go only to
    Replicate or to a Shard it has already, so that DTensor reduces it as it does for torch.relu (an all-reduce,
    where a reduce-scatter to another Shard would cost less but differ from torch's placements)."""
    placements = [p for spec in inputs for p in spec.placements]
    if any(p.is_partial() for p in placements):
        dims = sorted({p.dim for p in placements if p.is_shard()})
    else:
        dims = range(inputs[0].ndim)
    return [([p], [p] * len(inputs)) for p in [Replicate()] + [Shard(d) for d in dims]]


def register():
    register_sharding([torch.ops.relu_ext.relu.default, torch.ops.relu_ext.relu_.default])(_elementwise)
    register_sharding(torch.ops.relu_ext.relu_backward.default)(_elementwise)
