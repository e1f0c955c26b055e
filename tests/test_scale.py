"""A tensor of more than 2**31 elements (int8, about 2.1 GB): the flat index must not wrap at 32 bits."""
import pytest
import torch

import relu_ext
from conftest import DEVICES

N = 2**31 + 1_001


@pytest.mark.huge
@pytest.mark.parametrize("device", DEVICES)
def test_more_than_2_pow_31_elements(device):
    # A block of prime length repeated: an index that wrapped at 2**31 would read another value.
    block = torch.randint(-128, 128, (1_000_003,), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    x = block.repeat(N // block.numel() + 1)[:N].to(device)
    expected = torch.relu(x)
    out = relu_ext.relu(x)
    assert torch.equal(out, expected)
    del out
    relu_ext.relu_(x)
    assert torch.equal(x, expected)
