"""relu_ext's benchmark: checks relu_ext against nn.ReLU bit for bit, then times it against torch in the same run.

Each case times relu_ext and its peers with torch.utils.benchmark, taking turns (timing.py); the ratio is torch's
time / relu_ext's, paired by round (above 1: relu_ext is faster). Rows: forward (against torch.relu, nn.ReLU and
torch.compile(torch.relu)), in place (torch.relu_), backward (aten.threshold_backward), the forward and backward
with their fraction of a plain copy of the same bytes; for float32, each of the three beside its A/A control
(torch against itself: the scatter of a ratio when nothing differs); save_mask=True's forward (against the plain
forward) and its backward from the mask (against aten.threshold_backward); and SimpleModel training steps, eager
and compiled.

    python benchmarks/benchmark.py --quick                  # about a minute on a 2-core machine
    python benchmarks/benchmark.py --json out.json --plot out.png --markdown out.md
    python benchmarks/benchmark.py --threads 1 --only ops   # one thread on both sides
    python benchmarks/benchmark.py --thp                    # both sides on torch's huge-page CPU allocations
    python benchmarks/benchmark.py --device cuda --sizes 20-28 --dtypes float32,bfloat16,float16
    python benchmarks/benchmark.py --only mask --sizes 12-24 --rounds 8   # one group of rows
"""
import argparse
import json
import os
import platform
import sys
import time

import torch

import relu_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import (DTYPES, compiled_relu_peer, run_compiled_steps, run_mask_ops, run_ops,  # noqa: E402
                   run_training_steps, verify_simple_model)
from report import markdown, plot, print_row, ratio_tables  # noqa: E402
from timing import Runner  # noqa: E402


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
            "thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE", "0"), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:], "quick": args.quick,
            "sweeps": args.sweeps, "rounds": args.rounds, "min_run_time_s": args.min_run_time}
    if "cuda" in devices:
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run (default: every device that is available)")
    parser.add_argument("--quick", action="store_true", help="a reduced set that finishes in about a minute")
    parser.add_argument("--sizes", help="log2 of the element counts, e.g. 10-24 or 12,16,20")
    parser.add_argument("--dtypes", default="float32,bfloat16", help=f"comma list from {', '.join(DTYPES)}")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for both sides")
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per impl per case")
    parser.add_argument("--rounds", type=int, default=4,
                        help="turns each impl takes per case and sweep, order alternating (default 4)")
    parser.add_argument("--sweeps", type=int, default=None,
                        help="times the whole run is repeated; each case's figures pool all of them (default 3; "
                             "1 with --quick)")
    parser.add_argument("--batches", default=None, help="SimpleModel batch sizes, e.g. 1,64,4096")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile(torch.relu) peer and the compiled training steps")
    parser.add_argument("--only", choices=["ops", "mask", "steps"],
                        help="one group of rows: the plain ops, the save_mask ops, or the training steps")
    parser.add_argument("--thp", action="store_true",
                        help="run with THP_MEM_ALLOC_ENABLE=1: torch's CPU allocator puts large tensors on "
                             "transparent huge pages, for relu_ext and torch alike")
    parser.add_argument("--json", help="write every row and the machine's details to this file")
    parser.add_argument("--plot", help="write a PNG of throughput against size (needs matplotlib)")
    parser.add_argument("--markdown", help="write the Markdown ratio tables to this file")
    args = parser.parse_args(argv)
    if args.min_run_time is None:
        args.min_run_time = 0.05 if args.quick else 0.3
    if args.sweeps is None:
        args.sweeps = 1 if args.quick else 3
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.thp and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":  # read once by torch's allocator: start afresh
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + (argv or sys.argv[1:]))
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not (torch.cuda.is_available() and relu_ext.WITH_CUDA):
        if args.device == "cuda":
            raise SystemExit("--device cuda: no CUDA GPU here, or relu_ext was built without CUDA")
        devices.remove("cuda")
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise SystemExit(f"--dtypes: unknown {unknown}; choose from {list(DTYPES)}")
    torch.set_num_threads(args.threads)
    info = machine_info(args, devices)
    print("relu_ext benchmark:", ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("argv", "date")))

    runner = Runner(args, record=print_row)
    for sweep in range(args.sweeps):
        for device in devices:
            if args.sizes:
                sizes = parse_sizes(args.sizes)
            elif args.quick:
                sizes = [12, 16, 20] if device == "cpu" else [16, 20, 24]
            else:
                sizes = list(range(10, 27, 2)) + [27] if device == "cpu" else list(range(10, 29, 2))  # 2^27: 512 MB
            batches = ([int(b) for b in args.batches.split(",")] if args.batches
                       else [64] if args.quick else [1, 64, 4096])
            print(f"\n== {device}, sweep {sweep + 1} of {args.sweeps}: checked against nn.ReLU before each case; "
                  "ratio = torch time / relu_ext time")
            verify_simple_model(device)
            compile_rows = not (args.no_compile or args.quick)
            if args.only in (None, "ops"):
                run_ops(runner, device, dtypes, sizes, compiled_relu_peer(device) if compile_rows else None)
            if args.only in (None, "mask"):
                run_mask_ops(runner, device, dtypes, sizes)
            if args.only in (None, "steps"):
                run_training_steps(runner, device, batches)
                if compile_rows:
                    run_compiled_steps(runner, device, [b for b in batches if b > 1])
    rows = runner.combine()
    if args.sweeps > 1:
        print(f"\n== the medians over all {args.sweeps} sweeps (what --json, --markdown and --plot record)")
        for row in rows:
            print_row(row)
    print("\n== ratios (torch time / relu_ext time, paired by round)\n")
    print(ratio_tables(rows))
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
