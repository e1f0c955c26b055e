"""relu_ext's ops against torch.relu, torch.relu_ and aten.threshold_backward: values, dtype and strides."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import DEVICES, DTYPES, FLOAT_DTYPES, assert_same, check_all_ops, make_tensor

relu = torch.ops.relu_ext.relu
relu_ = torch.ops.relu_ext.relu_
relu_backward = torch.ops.relu_ext.relu_backward

# Around every vector width (16-64 bytes of 1-8 byte elements), and a large odd size that splits across threads.
SIZES = [0, 1] + list(range(2, 66)) + [1_000_003]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sizes(device, dtype):
    for n in SIZES:
        check_all_ops(make_tensor((n,), dtype, device, seed=n))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_dim(device, dtype):
    for value in (-3, 0, 5):
        check_all_ops(torch.tensor(value, device=device).to(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1, 2, 3, 5])
def test_misaligned_start(device, dtype, offset):
    base = make_tensor((offset + 1000,), dtype, device, seed=offset)
    for n in (1, 15, 16, 17, 63, 999):
        check_all_ops(base[offset:offset + n])


LAYOUTS = {
    "contiguous": lambda x: x,
    "transposed": lambda x: x.transpose(1, 2),
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "permuted": lambda x: x.permute(3, 1, 0, 2),
    "stepped_slice": lambda x: x[:, ::2, :, 1::3],
    "permuted_stepped": lambda x: x.permute(2, 0, 3, 1)[::2],
    "expanded": lambda x: x[:, :1].expand(-1, 5, -1, -1),
    "storage_offset": lambda x: x[1:, 1:],
    "size_one_dims": lambda x: x[:1, :, :1],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts(device, dtype, layout):
    check_all_ops(LAYOUTS[layout](make_tensor((3, 5, 7, 11), dtype, device)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_mixed_layouts(device, dtype):
    """grad and result need not share a layout: a grad from .sum() is expanded, one from a permute is permuted."""
    result = torch.relu(make_tensor((6, 4, 7, 5), dtype, device))
    grads = [
        torch.ones((), dtype=dtype, device=device).expand(result.shape),
        make_tensor((5, 7, 4, 6), dtype, device).permute(3, 2, 1, 0),
        make_tensor((6, 4, 7, 5), dtype, device).contiguous(memory_format=torch.channels_last),
    ]
    for grad in grads:
        for res in (result, result.contiguous(memory_format=torch.channels_last)):
            assert_same(relu_backward(grad, res), torch.ops.aten.threshold_backward(grad, res, 0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_special_values(device, dtype):
    values = torch.tensor([-0.0, 0.0, float("nan"), float("-nan"), float("inf"), float("-inf"), -1e-40, 1e-40],
                          dtype=torch.float64).to(dtype)
    x = values.repeat(40).to(device)  # through the vector body and the scalar tail
    check_all_ops(x)
    assert torch.relu(x).isnan().sum() == relu(x).isnan().sum() == 80


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,bits", [(torch.float16, torch.int16), (torch.bfloat16, torch.int16),
                                        (torch.float32, torch.int32), (torch.float64, torch.int64)])
def test_nan_and_denormal_bits_pass_through(device, dtype, bits):
    """Stronger than torch: NaN payloads and denormals come out with the bits that went in."""
    patterns = {torch.int16: [0x7C01, 0x7E55, 0x7FC5, -1, -2, 0x0001, 0x03FF],
                torch.int32: [0x7F800001, 0x7FC12345, -1, 0x00000001, 0x007FFFFF],
                torch.int64: [0x7FF0000000000001, -1, 0x0000000000000001]}[bits]
    raw = torch.tensor(patterns * 20, dtype=bits, device=device)
    assert torch.equal(relu(raw.view(dtype)).view(bits), raw)


@pytest.mark.parametrize("capability", ["default", "avx2", "avx512"])
def test_every_cpu_instruction_set(capability):
    """Each per-ISA copy of the CPU kernels, chosen as torch chooses its own (ATEN_CPU_CAPABILITY lowers it). The
    reference is relu's definition in torch.where form: torch's own DEFAULT path differs from its vector paths on
    some releases, and this test is about relu_ext's copies."""
    native = torch.backends.cpu.get_cpu_capability().lower()
    if capability != "default" and capability not in native and not (capability == "avx2" and "avx512" in native):
        pytest.skip(f"this CPU has no {capability}")
    script = """
import torch, relu_ext
from conftest import DTYPES, make_tensor, assert_same, unpack_mask
print(torch.backends.cpu.get_cpu_capability())
wide = {torch.uint16, torch.uint32, torch.uint64}  # few torch ops take these: their reference goes through int64
for dtype in DTYPES:
    work = torch.int64 if dtype in wide else dtype
    zero = torch.zeros((), dtype=work)
    for n in list(range(0, 140)) + [100_003]:
        x = make_tensor((n,), dtype, seed=n)
        r = torch.where(x.to(work) < 0, zero, x.to(work)).to(dtype)  # NaN and -0.0 pass, as torch.relu's do
        assert_same(torch.ops.relu_ext.relu(x), r)
        y = x.clone()
        torch.ops.relu_ext.relu_(y)
        assert_same(y, r)
        if dtype in wide:
            continue  # torch refuses their backward, and so does relu_ext
        g = make_tensor((n,), dtype, seed=n + 1)
        expected = torch.where(r <= 0, zero, g)
        assert_same(torch.ops.relu_ext.relu_backward(g, r), expected)
        assert_same(torch.ops.relu_ext.relu_backward(g[:1].expand(n), r), torch.where(r <= 0, zero, g[:1].expand(n)))
        if not dtype.is_floating_point:
            continue  # the mask ops take floating-point tensors
        out, mask = torch.ops.relu_ext.relu_mask(x)
        assert_same(out, r)
        y = x.clone()
        assert torch.equal(torch.ops.relu_ext.relu_mask_(y), mask)
        assert_same(y, r)
        passes = ~(r <= 0)
        assert torch.equal(unpack_mask(mask), torch.cat([passes, passes.new_zeros(-n % 8)]))
        assert_same(torch.ops.relu_ext.relu_mask_backward(g, mask, (1,)), expected)
        x2 = x.repeat(3, 1).t()  # runs of 3 elements: bits set one at a time, off 64-element boundaries
        out2, mask2 = torch.ops.relu_ext.relu_mask(x2)
        g2 = make_tensor(x2.shape, dtype, seed=n + 2)
        assert_same(torch.ops.relu_ext.relu_mask_backward(g2, mask2, out2.stride()), torch.where(out2 <= 0, zero, g2))
"""
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(__file__))
    assert run.returncode == 0, run.stderr
    # torch before 2.6 named the portable path "NO AVX"
    assert run.stdout.strip() in ({capability.upper()} | ({"NO AVX"} if capability == "default" else set()))
