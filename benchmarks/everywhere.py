"""What relu_ext.everywhere() costs: a training step without the scope against the same step inside it, in paired
rounds (benchmarks/timing.py), ratio = step time without / with the scope (below 1: the scope costs). A torch
function mode calls Python once for every torch function called in its scope, relu or not.

    python benchmarks/everywhere.py [--rounds 24] [--markdown benchmarks/results/cpu_everywhere.md]
"""
import argparse
import statistics

import torch
import torchvision
from torch import nn

import relu_ext
from timing import Runner, interval


def resnet18_step(batch):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    x = torch.randn(batch, 3, 64, 64)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        model(x).logsumexp(1).sum().backward()
        opt.step()
    return step


def simple_step(batch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 1))
    x = torch.randn(batch, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    return step


CASES = {"resnet18 step, batch 8, 3x64x64": lambda: resnet18_step(8),
         "SimpleModel step, batch 1": lambda: simple_step(1),
         "SimpleModel step, batch 64": lambda: simple_step(64)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per impl and round")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--markdown")
    args = parser.parse_args()
    args.sweeps = 1
    runner = Runner(args)
    lines = ["| case | without the scope | inside it | ratio (95% interval) |", "|---|---|---|---|"]
    for name, make in CASES.items():
        step = make()
        scope = relu_ext.everywhere()

        def scoped(step=step, scope=scope):
            with scope:
                step()
        impls = {"plain": ("step()", {"step": step}), "everywhere": ("scoped()", {"scoped": scoped})}
        times = {k: [] for k in impls}
        for impl in runner.turns(impls):
            stmt, env = impls[impl]
            times[impl].append(runner.measure(stmt, env, args.min_run_time).median)
        ratios = [p / e for p, e in zip(times["plain"], times["everywhere"])]
        low, high = interval(ratios)
        line = (f"| {name} | {statistics.median(times['plain']) * 1e3:.3f} ms | "
                f"{statistics.median(times['everywhere']) * 1e3:.3f} ms | "
                f"{statistics.median(ratios):.3f} ({low:.3f}-{high:.3f}) |")
        print(line, flush=True)
        lines.append(line)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"# relu_ext.everywhere() overhead, torch {torch.__version__}, {args.threads} threads, "
                    f"{args.rounds} paired rounds\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
