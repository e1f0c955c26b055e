"""relu_ext's benchmark: first checks relu_ext against nn.ReLU bit for bit, then times it against torch.

Every case runs relu_ext and its peers in the same process with torch.utils.benchmark (blocked_autorange, medians
of at least 5 timed calls after a warm-up; CUDA timings synchronise), taking turns: --rounds rounds per case in
alternating order (three times as many for the training step), the whole run repeated --sweeps times, each impl's
time the median of all its rounds. Per row: time, GB/s (bytes read + written), the ratio against torch (torch's
time / relu_ext's in the same round, the median over rounds: above 1 means relu_ext is faster) and the fraction of
the copy limit (a plain copy of the same bytes into a preallocated tensor). Those rows time calls in a loop; where
a CPU run reaches 32 MB of float32, one more row times single calls after 2 s idle.

    python benchmarks/benchmark.py --quick                  # under a minute on a 2-core machine
    python benchmarks/benchmark.py --json out.json --plot out.png --markdown out.md
    python benchmarks/benchmark.py --device cuda --sizes 20-28 --dtypes float32,bfloat16,float16
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.utils.benchmark as benchmark
from torch import nn

import relu_ext

MIN_CALLS = 5  # timed calls per measurement, at least
IDLE_S = 2.0  # the pause before each call of idle_case

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


class SimpleModel(nn.Module):
    """The seed's model; only `relu` differs between the two runs."""

    def __init__(self, relu):
        super().__init__()
        self.layer1 = nn.Linear(10, 20)
        self.relu = relu
        self.layer2 = nn.Linear(20, 1)

    def forward(self, x):
        return self.layer2(self.relu(self.layer1(x)))


# ----------------------------------------------------------------------------------------------------------------
# Verification: a fast wrong kernel is not a result.

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
    xr = x.detach().clone().requires_grad_(x.dtype.is_floating_point)
    if xr.requires_grad:
        (g_mine,) = torch.autograd.grad(relu_ext.ReLU()(xr), xr, grad)
        (g_torch,) = torch.autograd.grad(nn.ReLU()(xr), xr, grad)
        check_equal(f"autograd backward ({x.dtype})", g_mine, g_torch)


def verify_seed_model(device):
    torch.manual_seed(0)
    reference = SimpleModel(nn.ReLU()).to(device)
    swapped = SimpleModel(relu_ext.ReLU()).to(device)
    swapped.load_state_dict(reference.state_dict())
    x = torch.randn(1, 10, device=device)
    check_equal("the seed's SimpleModel forward", swapped(x), reference(x))
    swapped(x).sum().backward()
    reference(x).sum().backward()
    for p, q in zip(swapped.parameters(), reference.parameters()):
        check_equal("the seed's SimpleModel gradients", p.grad, q.grad)
    check_equal("the seed's example", relu_ext.ReLU()(torch.tensor([[-1.0, 2.0, -0.5], [0.3, -0.8, 1.0]])),
                nn.ReLU()(torch.tensor([[-1.0, 2.0, -0.5], [0.3, -0.8, 1.0]])))


# ----------------------------------------------------------------------------------------------------------------
# Timing

class Runner:
    def __init__(self, args):
        self.args = args
        self.rows = []
        self.measurements = []

    def measure(self, label, sub_label, description, stmt, env, min_run_time):
        timer = benchmark.Timer(stmt=stmt, globals=env, label=label, sub_label=sub_label, description=description,
                                num_threads=self.args.threads)
        m = timer.blocked_autorange(min_run_time=min_run_time)
        if m.number_per_run * len(m.raw_times) < MIN_CALLS:
            # A large case: the budget bought one timed call after one warm-up call, and a median of one is whatever
            # that call met (at 2^26 here, relu_ext's first calls after a pause find cold huge pages: see idle_case).
            # Measured again, for at least MIN_CALLS calls of the length just seen; the first pass was the warm-up.
            m = timer.blocked_autorange(min_run_time=MIN_CALLS * m.median)
        return m

    def share(self):
        """Seconds per measurement: --min-run-time spread over the sweeps (and, in case(), the rounds)."""
        return self.args.min_run_time / max(1, self.args.sweeps)

    def time(self, label, sub_label, description, stmt, env):
        m = self.measure(label, sub_label, description, stmt, env, self.share())
        self.measurements.append(m)
        return m.median

    def case(self, device, op, dtype_name, numel, bytes_moved, impls, copy_time, more_rounds=1):
        """Times each impl (relu_ext first, torch second, more peers after) and prints one row.

        The impls take turns: --rounds rounds per sweep, in order A B .. then .. B A, each a share of
        --min-run-time, and each impl's time is the median of its rounds' medians (over every sweep, see combine).
        This machine's speed drifts over seconds (other tenants); timed one after the other, whichever ran in a slow
        spell would lose by it. more_rounds multiplies the rounds, each as long as before (the case takes that many
        times longer), for a case whose rounds scatter more than the others'."""
        label, sub_label = case_labels(device, op, dtype_name, numel)
        rounds = max(1, self.args.rounds)
        medians = {name: [] for name in impls}
        measured = []
        for name in self.turns(impls, more_rounds):
            stmt, env = impls[name]
            m = self.measure(label, sub_label, name, stmt, env, self.share() / rounds)
            medians[name].append(m.median)
            measured.append(m)
        self.measurements += benchmark.Measurement.merge(measured)
        self.record(make_row(device, op, dtype_name, numel, bytes_moved, medians, [copy_time] if copy_time else []))

    def turns(self, impls, more_rounds=1):
        """The impls' names in the order they are timed: --rounds (times more_rounds) rounds, A B .. then .. B A."""
        names = list(impls)
        for r in range(max(1, self.args.rounds) * more_rounds):
            yield from (names if r % 2 == 0 else names[::-1])

    def record(self, row):
        self.rows.append(row)
        print_row(row)

    def combine(self):
        """One row per case, from every sweep's rounds: a slow spell of a few seconds, which can cover all the
        rounds of one case, then falls on one sweep of several."""
        groups = {}
        for row in self.rows:
            groups.setdefault((row["device"], row["op"], row["dtype"], row["numel"]), []).append(row)
        combined = []
        for (device, op, dtype_name, numel), rows in groups.items():
            rounds = {name: [t for row in rows for t in row["round_times_s"][name]] for name in rows[0]["times_s"]}
            copies = [t for row in rows for t in row["copy_times_s"]]
            combined.append(make_row(device, op, dtype_name, numel, rows[0]["bytes"], rounds, copies, len(rows)))
        return combined


def make_row(device, op, dtype_name, numel, bytes_moved, round_times, copy_times, sweeps=1):
    """A result row; round_times: each impl's round medians (relu_ext first, torch second), round i of every impl
    from the same turn of Runner.turns().

    Times are the medians of the rounds. A ratio is the median over rounds of the peer's time / relu_ext's in the
    same round: the two were timed back to back, so a slow spell of the machine, which lasts longer than a round,
    slows both sides of a pair. The ratio of the two medians would let the spells decide instead: over a handful of
    rounds, one side meeting a slow spell more often than the other moves it by tens of percent."""
    times = {name: statistics.median(ts) for name, ts in round_times.items()}
    names = list(times)
    mine = round_times[names[0]]
    ratios = {k: statistics.median(t / m for t, m in zip(ts, mine)) for k, ts in round_times.items() if k != names[0]}
    copy_time = statistics.median(copy_times) if copy_times else None
    return {"device": device, "op": op, "dtype": dtype_name, "numel": numel, "bytes": bytes_moved, "sweeps": sweeps,
            "times_s": times, "round_times_s": round_times, "copy_times_s": copy_times,
            "gbps": {k: bytes_moved / t / 1e9 for k, t in times.items()},
            "ratio_vs_torch": ratios[names[1]], "ratios": ratios,
            "copy_fraction": (copy_time / times[names[0]]) if copy_time else None}


def case_labels(device, op, dtype_name, numel):
    """The label and sub-label of a case, as torch.utils.benchmark's tables and the printed rows show them."""
    size = f"2^{numel.bit_length() - 1}" if numel & (numel - 1) == 0 else str(numel)
    return f"{op} ({device})", f"{dtype_name} {size}"


def print_row(row):
    times = row["times_s"]
    names = list(times)
    mine = times[names[0]]
    label, sub_label = case_labels(row["device"], row["op"], row["dtype"], row["numel"])
    peers = "  ".join(f"{k} {fmt_time(t)} ({row['ratios'][k]:.2f}x)" for k, t in times.items() if k != names[0])
    limit = f"  {row['copy_fraction'] * 100:5.1f}% of copy" if row["copy_fraction"] else ""
    print(f"{label:<28} {sub_label:<14} relu_ext {fmt_time(mine):>9} {row['gbps'][names[0]]:7.1f} GB/s  "
          f"ratio {row['ratio_vs_torch']:5.2f}{limit}  | {peers}", flush=True)


def fmt_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def idle_case(runner, device, numel):
    """The first float32 forward call after IDLE_S seconds of idle, relu_ext against torch.relu, one call per round.

    Not a steady state: on this VM the host takes back free memory (a virtio balloon with free page reporting: free
    2 MiB blocks are handed back within about a second), and relu_ext's huge-page outputs (32 MB and up) are then
    backed afresh by the host on first touch, 512 host faults per huge page. torch's 4 KiB pages come from smaller
    free blocks, which are not reported. This row shows what that costs; the rows above time calls in a loop."""
    x = sample(numel, torch.float32, device)
    impls = {"relu_ext": relu_ext.relu, "torch.relu": torch.relu}
    times = {name: [] for name in impls}
    for name in runner.turns(impls):
        time.sleep(IDLE_S)
        start = time.perf_counter()
        impls[name](x)
        times[name].append(time.perf_counter() - start)
    runner.record(make_row(device, f"forward after {IDLE_S:g} s idle", "float32", numel, 2 * x.nbytes, times, []))


def run_device(runner, device, dtypes, sizes, compile_peer, batches):
    verify_seed_model(device)
    compiled_relu = None
    if compile_peer:
        try:
            compiled_relu = torch.compile(torch.relu, dynamic=True)
            compiled_relu(torch.randn(1024, device=device))
        except Exception as error:  # noqa: BLE001  (a missing compiler only drops this peer)
            print(f"note: torch.compile(torch.relu) does not run here ({type(error).__name__}); skipping that peer")
            compiled_relu = None
    ext_relu, ext_relu_, ext_backward = relu_ext.relu, relu_ext.relu_, torch.ops.relu_ext.relu_backward
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for exp in sizes:
            numel = 2**exp
            x = sample(numel, dtype, device)
            verify(x)
            nbytes = numel * x.element_size()
            out = torch.empty_like(x)
            env = {"x": x, "out": out}
            copy_time = runner.time(f"copy ({device})", f"{dtype_name} 2^{exp}", "copy_", "out.copy_(x)", env)
            impls = {"relu_ext": ("f(x)", dict(env, f=ext_relu)), "torch.relu": ("f(x)", dict(env, f=torch.relu)),
                     "nn.ReLU": ("f(x)", dict(env, f=nn.ReLU()))}
            if compiled_relu is not None:
                impls["compile(torch.relu)"] = ("f(x)", dict(env, f=compiled_relu))
            runner.case(device, "forward", dtype_name, numel, 2 * nbytes, impls, copy_time)
            y = x.clone()
            runner.case(device, "forward in-place", dtype_name, numel, 2 * nbytes,
                        {"relu_ext": ("f(y)", {"f": ext_relu_, "y": y}),
                         "torch.relu_": ("f(y)", {"f": torch.relu_, "y": y})}, copy_time)
            result, grad = torch.relu(x), torch.randn(x.shape, device=device).to(dtype)
            genv = {"g": grad, "r": result}
            runner.case(device, "backward", dtype_name, numel, 3 * nbytes,
                        {"relu_ext": ("f(g, r)", dict(genv, f=ext_backward)),
                         "threshold_backward": ("f(g, r, 0)", dict(genv, f=torch.ops.aten.threshold_backward))},
                        copy_time * 1.5)
            del x, out, y, result, grad, env, genv, impls
    if device == "cpu" and "float32" in dtypes and 4 << max(sizes) >= 32 << 20:
        idle_case(runner, device, 1 << max(sizes))
    for batch in batches:
        # One model, one optimizer, one batch: the two steps differ only in the model's relu module. Two model
        # instances differed in where their tensors lay, and that alone moved the step time by up to 10% here,
        # whichever relu either had (the instance built first was the slower one, 0.91 one way round, 1.11 the other).
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
        # Three times the rounds: one round of a step is a few dozen steps, and their ratios scatter more than any op
        # row's (batch 4096, one build: a sweep's median of 4 rounds 0.87-1.02 in 4 runs, the run's 0.95-1.01; with 12
        # rounds a sweep 0.96-1.04, the run 0.99-1.02). The steps cost little time, so they take it.
        runner.case(device, "SimpleModel train step", "float32", batch, 0, steps, None, more_rounds=3)


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        sizes += list(range(int(lo), int(hi or lo) + 1))
    return sizes


def machine_info(args, devices):
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": args.threads,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version(),
            "torch": torch.__version__, "relu_ext": relu_ext.__version__, "relu_ext_cuda": relu_ext.WITH_CUDA,
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": sys.argv[1:], "quick": args.quick, "sweeps": args.sweeps, "rounds": args.rounds,
            "min_run_time_s": args.min_run_time}
    if "cuda" in devices:
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: --plot needs matplotlib (pip install matplotlib); no plot written to {path}")
        return
    panels = sorted({(r["device"], r["op"], r["dtype"]) for r in rows if r["bytes"]})
    cols = 3
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4 * nrows), squeeze=False)
    for ax, (device, op, dtype) in zip(axes.flat, panels):
        sel = sorted((r for r in rows if (r["device"], r["op"], r["dtype"]) == (device, op, dtype)),
                     key=lambda r: r["numel"])
        sizes = [r["numel"] for r in sel]
        for name in sel[0]["gbps"]:
            ax.plot(sizes, [r["gbps"][name] for r in sel], marker="o", label=name,
                    linewidth=2.5 if name == "relu_ext" else 1.2)
        if sel[0]["copy_fraction"]:
            ax.plot(sizes, [r["gbps"]["relu_ext"] / r["copy_fraction"] for r in sel], "k--", label="copy limit")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{op}, {dtype}, {device}")
        ax.set_xlabel("elements")
        ax.set_ylabel("GB/s (read + written)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"plot written to {path}")


def markdown(info, rows):
    """A table of ratios (torch time / relu_ext time) per op and dtype against size, and the copy-limit fractions."""
    lines = [f"Machine: {info['cpu']}, {info['threads']} threads, {info.get('gpu', 'no GPU')}, torch {info['torch']}, "
             f"CPU capability {info['cpu_capability']}, {info['date']}.", "",
             "Ratio = torch's time / relu_ext's in the same round, the median over "
             f"{info['sweeps']} sweeps x {info['rounds']} rounds, the impls taking turns (above 1: relu_ext is "
             "faster); in brackets, relu_ext's throughput (its median time) as a fraction of a plain copy of the "
             "same bytes in the same run."]
    if any("idle" in r["op"] for r in rows):
        lines.append(f"The 'after {IDLE_S:g} s idle' row times one call per round after a pause, not calls in a loop "
                     "(benchmark.py, idle_case).")
    lines.append("")
    for device in sorted({r["device"] for r in rows}):
        sel = [r for r in rows if r["device"] == device and r["bytes"]]
        sizes = sorted({r["numel"] for r in sel})
        lines += [f"### {device}", "", "| op | dtype | peer | " + " | ".join(f"2^{n.bit_length() - 1}" for n in sizes)
                  + " |", "|---|---|---|" + "---|" * len(sizes)]
        for op, dtype in sorted({(r["op"], r["dtype"]) for r in sel}, key=lambda k: (k[1], k[0])):
            cells = {r["numel"]: r for r in sel if (r["op"], r["dtype"]) == (op, dtype)}
            peers = list(next(iter(cells.values()))["ratios"])
            for peer in peers:
                row = [f"{cells[n]['ratios'][peer]:.2f}" + (f" ({cells[n]['copy_fraction'] * 100:.0f}%)"
                                                            if peer == peers[0] and cells[n]["copy_fraction"] else "")
                       if n in cells else "" for n in sizes]
                lines.append(f"| {op} | {dtype} | {peer} | " + " | ".join(row) + " |")
        steps = [r for r in rows if r["device"] == device and not r["bytes"]]
        if steps:
            lines += ["", "| SimpleModel train step | batch | relu_ext | nn.ReLU | ratio |", "|---|---|---|---|---|"]
            for r in steps:
                t = r["times_s"]
                lines.append(f"| {device} | {r['numel']} | {t['relu_ext'] * 1e6:.0f} us | {t['nn.ReLU'] * 1e6:.0f} us | "
                             f"{r['ratio_vs_torch']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run (default: every device that is available)")
    parser.add_argument("--quick", action="store_true", help="a reduced set that finishes in under a minute")
    parser.add_argument("--sizes", help="log2 of the element counts, e.g. 10-24 or 12,16,20")
    parser.add_argument("--dtypes", default="float32,bfloat16", help=f"comma list from {', '.join(DTYPES)}")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for both sides")
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per impl per case")
    parser.add_argument("--rounds", type=int, default=4,
                        help="turns each impl takes per case and sweep, order alternating (default 4)")
    parser.add_argument("--sweeps", type=int, default=None,
                        help="times the whole run is repeated; each case's time is the median over all of them "
                             "(default 3; 1 with --quick)")
    parser.add_argument("--batches", default=None, help="SimpleModel batch sizes, e.g. 1,64,4096")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile(torch.relu) peer")
    parser.add_argument("--json", help="write every row and the machine's details to this file")
    parser.add_argument("--plot", help="write a PNG of throughput against size (needs matplotlib)")
    parser.add_argument("--markdown", help="write a Markdown table of the ratios")
    args = parser.parse_args(argv)

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not (torch.cuda.is_available() and relu_ext.WITH_CUDA):
        if args.device == "cuda":
            raise SystemExit("--device cuda: no CUDA GPU here, or relu_ext was built without CUDA")
        devices.remove("cuda")
    if args.min_run_time is None:
        args.min_run_time = 0.05 if args.quick else 0.3
    if args.sweeps is None:
        args.sweeps = 1 if args.quick else 3
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise SystemExit(f"--dtypes: unknown {unknown}; choose from {list(DTYPES)}")
    torch.set_num_threads(args.threads)
    info = machine_info(args, devices)
    print("relu_ext benchmark:", ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("argv", "date")))

    runner = Runner(args)
    for sweep in range(args.sweeps):
        for device in devices:
            if args.sizes:
                sizes = parse_sizes(args.sizes)
            elif args.quick:
                sizes = [12, 16, 20] if device == "cpu" else [16, 20, 24]
            else:
                sizes = list(range(10, 25, 2)) if device == "cpu" else list(range(10, 29, 2))
            batches = [int(b) for b in args.batches.split(",")] if args.batches else ([64] if args.quick else
                                                                                      [1, 64, 4096])
            print(f"\n== {device}, sweep {sweep + 1} of {args.sweeps}: checked against nn.ReLU before each case; "
                  "ratio = torch time / relu_ext time")
            run_device(runner, device, dtypes, sizes, compile_peer=not args.no_compile and not args.quick,
                       batches=batches)
    rows = runner.combine()
    if args.sweeps > 1:
        print(f"\n== the medians over all {args.sweeps} sweeps (what --json, --markdown and --plot record)")
        for row in rows:
            print_row(row)

    print()
    compare = benchmark.Compare(benchmark.Measurement.merge(runner.measurements))
    compare.trim_significant_figures()
    compare.print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=1)
        print(f"results written to {args.json}")
    if args.plot:
        plot(rows, args.plot)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(info, rows))
        print(f"summary written to {args.markdown}")
    return rows


if __name__ == "__main__":
    main()
