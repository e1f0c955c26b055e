"""A tensor of more than 2**31 elements (int8, about 2.1 GB): the flat index must not wrap at 32 bits."""
import os
import subprocess
import sys

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


def test_large_outputs_are_ordinary_tensors():
    """Outputs of 32 MB and more live on huge pages; they still resize, share and free like any CPU tensor."""
    x = torch.randn(2**23 + 3)
    out = relu_ext.relu(x)
    assert torch.equal(out, torch.relu(x))
    out.resize_(2**25)  # grows through torch's CPU allocator, keeping the values
    assert torch.equal(out[: x.numel()], torch.relu(x))
    out.share_memory_()
    assert out.is_shared() and torch.equal(out[: x.numel()], torch.relu(x))
    grad = torch.ops.relu_ext.relu_backward(x, torch.relu(x))
    assert torch.equal(grad, torch.ops.aten.threshold_backward(x, torch.relu(x), 0))
    del out, grad


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_large_outputs_give_their_memory_back_when_freed():
    """No cache behind the user's back: freeing a 256 MB output returns its pages to the system at once."""
    x = torch.randn(2**26)
    before = _rss_bytes()
    out = relu_ext.relu(x)
    held = _rss_bytes()
    del out
    after = _rss_bytes()
    assert held - before > 200e6 and held - after > 200e6


@pytest.mark.parametrize("offset", [0, 1, 16, 32, 1000])
def test_mid_size_outputs_start_away_from_their_inputs_in_the_page(offset):
    """Outputs from 2 MiB to 32 MB are placed so that they do not start just above an input modulo 4 KiB (where
    the CPU stalls loads behind stores that look alike); they stay ordinary tensors."""
    n = 2**19  # 2 MiB of float32: the smallest output that is placed
    base = torch.randn(n + 2000)
    x = base[offset: offset + n]
    out = relu_ext.relu(x)
    assert torch.equal(out, torch.relu(x)) and out.stride() == (1,) and out.data_ptr() % 64 == 0
    assert not 0 < (out.data_ptr() - x.data_ptr()) % 4096 < 768
    g = base[offset + 7: offset + 7 + n]
    grad = torch.ops.relu_ext.relu_backward(g, out)
    for t in (g, out):
        assert not 0 < (grad.data_ptr() - t.data_ptr()) % 4096 < 768
    assert torch.equal(grad, torch.ops.aten.threshold_backward(g, out, 0))
    out.resize_(2 * n)  # grows through torch's CPU allocator, keeping the values
    assert torch.equal(out[:n], torch.relu(x))
    out.share_memory_()
    assert out.is_shared() and torch.equal(out[:n], torch.relu(x))


HUGE_PAGE_PROBE = """
import torch, relu_ext
out = relu_ext.relu(torch.randn(2**24))  # 64 MB: glibc maps it fresh
address = out.data_ptr()
with open("/proc/self/smaps") as f:
    lines = f.read().splitlines()
for i, line in enumerate(lines):
    start, _, end = line.split()[0].partition("-")
    if end and int(start, 16) <= address < int(end, 16):
        print(next(int(l.split()[1]) for l in lines[i + 1:] if l.startswith("AnonHugePages:")))
        break
"""


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


@pytest.mark.skipif(_thp_mode() != "madvise", reason="needs transparent huge pages in madvise mode (the default)")
@pytest.mark.parametrize("setting", [None, "1", "0", "yes"])
def test_huge_pages_for_large_outputs_unless_turned_off(setting):
    """From 32 MB, outputs go on huge pages; RELU_EXT_HUGE_PAGES=0 keeps them on 4 KiB pages (read from the mapping
    that holds the output, as /proc/self/smaps reports it); another value warns and changes nothing."""
    env = {k: v for k, v in os.environ.items() if k != "RELU_EXT_HUGE_PAGES"}
    if setting is not None:
        env["RELU_EXT_HUGE_PAGES"] = setting
    run = subprocess.run([sys.executable, "-c", HUGE_PAGE_PROBE], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(__file__))
    assert run.returncode == 0, run.stderr
    huge_kb = int(run.stdout)
    if setting == "0":
        assert huge_kb == 0
    else:
        assert huge_kb >= 32 * 1024
    assert ("RELU_EXT_HUGE_PAGES=yes is neither 0 nor 1" in run.stderr) == (setting == "yes")
