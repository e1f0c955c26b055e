"""What relu_ext's benchmark runs: the checks against nn.ReLU that come first, and the cases it times."""
import torch
from torch import nn

import relu_ext

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


class SimpleModel(nn.Module):
    """The nn.ReLU guide's model, Linear(10, 20) -> ReLU -> Linear(20, 1); only `relu` differs between runs."""

    def __init__(self, relu):
        super().__init__()
        self.layer1 = nn.Linear(10, 20)
        self.relu = relu
        self.layer2 = nn.Linear(20, 1)

    def forward(self, x):
        return self.layer2(self.relu(self.layer1(x)))


class Mismatch(SystemExit):
    pass


def check_equal(what, mine, theirs):
    same = (mine.dtype == theirs.dtype and mine.shape == theirs.shape and mine.stride() == theirs.stride()
            and torch.equal(mine.isnan(), theirs.isnan()))
    numbers = ~mine.isnan()
    same = same and torch.equal(mine[numbers], theirs[numbers])
    if same and mine.dtype.is_floating_point:
        same = torch.equal(mine[numbers].signbit(), theirs[numbers].signbit())
    if not same:
        raise Mismatch(f"STOP: relu_ext differs from nn.ReLU in {what}; not timing a wrong kernel. "
                       "Rebuild relu_ext and run its tests (pytest).")


def sample(numel, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(numel, generator=g)
    special = torch.tensor([0.0, -0.0, float("nan"), float("inf"), float("-inf"), -1e-40])
    x[: min(numel, len(special))] = special[: min(numel, len(special))]
    return x.to(device=device, dtype=dtype)


def verify(x):
    """relu_ext against nn.ReLU on x: forward, in-place and backward."""
    ref = nn.ReLU()(x)
    check_equal(f"forward ({x.dtype}, {x.numel()} elements, {x.device})", relu_ext.ReLU()(x), ref)
    check_equal(f"in-place forward ({x.dtype})", relu_ext.ReLU(inplace=True)(x.clone()), ref)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x)
    check_equal(f"backward ({x.dtype})", torch.ops.relu_ext.relu_backward(grad, ref),
                torch.ops.aten.threshold_backward(grad, ref, 0))
    xr = x.detach().clone().requires_grad_()
    (g_mine,) = torch.autograd.grad(relu_ext.ReLU()(xr), xr, grad)
    (g_torch,) = torch.autograd.grad(nn.ReLU()(xr), xr, grad)
    check_equal(f"autograd backward ({x.dtype})", g_mine, g_torch)


def verify_mask(x):
    """relu_ext with save_mask=True against nn.ReLU on x (which requires grad): output and gradient."""
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(x)
    out = relu_ext.relu(x, save_mask=True)
    (g_mine,) = torch.autograd.grad(out, x, grad)
    check_equal(f"forward with save_mask ({x.dtype})", out, nn.ReLU()(x))
    check_equal(f"backward from the mask ({x.dtype})", g_mine, torch.autograd.grad(nn.ReLU()(x), x, grad)[0])


def verify_simple_model(device):
    torch.manual_seed(0)
    reference = SimpleModel(nn.ReLU()).to(device)
    swapped = SimpleModel(relu_ext.ReLU()).to(device)
    swapped.load_state_dict(reference.state_dict())
    x = torch.randn(1, 10, device=device)
    check_equal("the SimpleModel's forward", swapped(x), reference(x))
    swapped(x).sum().backward()
    reference(x).sum().backward()
    for p, q in zip(swapped.parameters(), reference.parameters()):
        check_equal("the SimpleModel's gradients", p.grad, q.grad)
    example = torch.tensor([[-1.0, 2.0, -0.5], [0.3, -0.8, 1.0]])
    check_equal("the nn.ReLU guide's example", relu_ext.ReLU()(example), nn.ReLU()(example))


def compiled_relu_peer(device):
    """torch.compile(torch.relu), or None (with a note) where no compiler runs here."""
    try:
        compiled = torch.compile(torch.relu, dynamic=True)
        compiled(torch.randn(1024, device=device))
        return compiled
    except Exception as error:  # noqa: BLE001  (a missing compiler only drops this peer)
        print(f"note: torch.compile(torch.relu) does not run here ({type(error).__name__}); skipping that peer")
        return None


# The dtypes whose op rows are each followed by an A/A control (float32: where relu_ext's targets are parity).
CONTROLLED = ("float32",)


def op_case(runner, device, op, dtype_name, numel, bytes_moved, impls, copy_time):
    """One op row; for a CONTROLLED dtype, then its A/A control: torch's impl (the second) against itself, the same
    statement on the same tensors, which shows how far this run's ratios scatter when nothing differs."""
    runner.case(device, op, dtype_name, numel, bytes_moved, impls, copy_time)
    if dtype_name in CONTROLLED:
        name, impl = list(impls.items())[1]
        runner.case(device, f"{op}, A/A control", dtype_name, numel, bytes_moved, {name: impl, f"{name} again": impl},
                    None)


def run_ops(runner, device, dtypes, sizes, compiled_relu):
    """Forward, in place and backward per dtype and size, against torch (forward and backward also against a plain copy
    of the same bytes), each with its A/A control for the CONTROLLED dtypes."""
    for dtype_name in dtypes:
        for exp in sizes:
            numel = 2**exp
            x = sample(numel, DTYPES[dtype_name], device)
            verify(x)
            nbytes = numel * x.element_size()
            out = torch.empty_like(x)
            copy_time = runner.time("out.copy_(x)", {"x": x, "out": out})
            impls = {"relu_ext": ("f(x)", {"f": relu_ext.relu, "x": x}),
                     "torch.relu": ("f(x)", {"f": torch.relu, "x": x}),
                     "nn.ReLU": ("f(x)", {"f": nn.ReLU(), "x": x})}
            if compiled_relu is not None:
                impls["compile(torch.relu)"] = ("f(x)", {"f": compiled_relu, "x": x})
            op_case(runner, device, "forward", dtype_name, numel, 2 * nbytes, impls, copy_time)
            y = x.clone()
            op_case(runner, device, "forward in-place", dtype_name, numel, 2 * nbytes,
                    {"relu_ext": ("f(y)", {"f": relu_ext.relu_, "y": y}),
                     "torch.relu_": ("f(y)", {"f": torch.relu_, "y": y})}, None)  # no copy to compare: it
            # writes lines it has just read, which a copy into other memory cannot
            genv = {"g": torch.randn(x.shape, device=device).to(x.dtype), "r": torch.relu(x)}
            op_case(runner, device, "backward", dtype_name, numel, 3 * nbytes,
                    {"relu_ext": ("f(g, r)", dict(genv, f=torch.ops.relu_ext.relu_backward)),
                     "threshold_backward": ("f(g, r, 0)", dict(genv, f=torch.ops.aten.threshold_backward))},
                    copy_time * 1.5)
            del x, out, y, genv, impls


def run_mask_ops(runner, device, dtypes, sizes):
    """save_mask=True: the forward (on an input that requires grad, so autograd records it and the mask is made)
    against the same call without the flag, and the backward from the mask against aten.threshold_backward."""
    for dtype_name in dtypes:
        for exp in sizes:
            numel = 2**exp
            x = sample(numel, DTYPES[dtype_name], device).requires_grad_()
            verify_mask(x)
            nbytes, mask_bytes = numel * x.element_size(), (numel + 7) // 8
            runner.case(device, "forward save_mask", dtype_name, numel, 2 * nbytes + mask_bytes,
                        {"relu_ext": ("f(x, save_mask=True)", {"f": relu_ext.relu, "x": x}),
                         "relu_ext plain": ("f(x)", {"f": relu_ext.relu, "x": x}),
                         "torch.relu": ("f(x)", {"f": torch.relu, "x": x})}, None)
            r = torch.relu(x.detach())
            g = torch.randn(x.shape, device=device).to(x.dtype)
            _, mask = torch.ops.relu_ext.relu_mask(x.detach())
            runner.case(device, "backward from mask", dtype_name, numel, 2 * nbytes + mask_bytes,
                        {"relu_ext": ("f(g, m, s)", {"f": torch.ops.relu_ext.relu_mask_backward, "g": g, "m": mask,
                                                     "s": r.stride()}),
                         "threshold_backward": ("f(g, r, 0)", {"f": torch.ops.aten.threshold_backward, "g": g,
                                                               "r": r})}, None)
            del x, r, g, mask


def run_training_steps(runner, device, batches):
    """A SimpleModel training step (forward, MSE loss, backward, SGD) with relu_ext.ReLU against nn.ReLU."""
    for batch in batches:
        # One model, one optimizer, one batch: the two steps differ only in the model's relu module (two model
        # instances differ in where their tensors lie, which alone moved the step time by up to 10% here).
        torch.manual_seed(0)
        model = SimpleModel(nn.ReLU()).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        data, target = torch.randn(batch, 10, device=device), torch.randn(batch, 1, device=device)
        steps = {}
        for name, relu in (("relu_ext", relu_ext.ReLU()), ("nn.ReLU", nn.ReLU())):

            def step(relu=relu):
                if model.relu is not relu:
                    model.relu = relu
                opt.zero_grad(set_to_none=True)
                nn.functional.mse_loss(model(data), target).backward()
                opt.step()

            steps[name] = ("step()", {"step": step})
        # Three times the rounds: a step's round ratios scatter more than any op row's, and steps cost little.
        runner.case(device, "SimpleModel train step", "float32", batch, 0, steps, None, more_rounds=3)


class ConvBlock(nn.Module):
    """Conv2d(16, 32, 3) -> BatchNorm2d -> ReLU, the block of a convolutional net."""

    def __init__(self, relu):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)
        self.relu = relu

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def run_compiled_steps(runner, device, batches):
    """Training steps of a torch.compile'd model: relu_ext.ReLU (fused, the default; then opaque) against nn.ReLU.
    As for the eager steps, one model whose relu module is swapped: the compiled code keeps one graph per module."""
    models = [("SimpleModel", SimpleModel, lambda b: (torch.randn(b, 10), torch.randn(b, 1)), batches),
              ("Conv-BN-ReLU", ConvBlock, lambda b: (torch.randn(b, 16, 32, 32), torch.randn(b, 32, 32, 32)), [8])]
    for name, make, data, sizes in models:
        for batch in sizes:
            x, y = (t.to(device) for t in data(batch))
            for opaque in (False, True):
                relu_ext.config.opaque_under_compile = opaque  # what this pair's relu_ext step is traced with
                torch._dynamo.reset()  # a fresh cache: the two graphs of this pair, no fallback to eager
                torch.manual_seed(0)
                model = make(nn.ReLU()).to(device)
                compiled = torch.compile(model, dynamic=False)
                opt = torch.optim.SGD(model.parameters(), lr=1e-3)
                steps = {}
                # The control, on the fused pair: nn.ReLU against another nn.ReLU in the same harness, which shows
                # how far this run's ratios scatter when nothing differs.
                control = [("another nn.ReLU", nn.ReLU())] if not opaque and name == "SimpleModel" else []
                for label, relu in [("relu_ext", relu_ext.ReLU()), ("nn.ReLU", nn.ReLU())] + control:

                    def step(relu=relu):
                        if model.relu is not relu:
                            model.relu = relu
                        opt.zero_grad(set_to_none=True)
                        nn.functional.mse_loss(compiled(x), y).backward()
                        opt.step()

                    step()  # compiles
                    steps[label] = ("step()", {"step": step})
                op = f"compiled {name} step" + (" (opaque)" if opaque else "")
                runner.case(device, op, "float32", batch, 0, {k: steps[k] for k in ("relu_ext", "nn.ReLU")}, None,
                            more_rounds=3)
                if control:
                    runner.case(device, f"compiled {name} step, control", "float32", batch, 0,
                                {k: steps[k] for k in ("nn.ReLU", "another nn.ReLU")}, None, more_rounds=3)
    relu_ext.config.opaque_under_compile = False
