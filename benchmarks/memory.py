"""What save_mask=True saves: a training step's saved activations and peak memory with nn.ReLU and with
relu_ext.ReLU(save_mask=True), and the two loss trajectories (they must be the same, bit for bit).

    python benchmarks/memory.py                       # Linear(1024, 4096) -> ReLU -> Dropout -> Linear, batch 4096
    python benchmarks/memory.py --markdown benchmarks/results/cpu_memory.md

Saved activations: the bytes of the distinct storages autograd saves for the backward during the forward
(torch.autograd.graph.saved_tensors_hooks). Peak: the most memory live at once during one step (forward, backward,
SGD), from torch.profiler's memory timeline (export_memory_timeline), parameters and data included.
"""
import argparse
import json
import os
import tempfile
import warnings

import torch
from torch import nn

import relu_ext

MB = 2**20


def mlp(relu):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1024, 4096), relu, nn.Dropout(0.1), nn.Linear(4096, 1024))


def simple_model(relu):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), relu, nn.Linear(20, 1))


def saved_bytes(model, x):
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


def peak_bytes(step):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # torch 2.14 marks the timeline deprecated in favour of CUDA-only memory snapshots; it is the CPU's one view
        warnings.simplefilter("ignore", FutureWarning)
        path = os.path.join(folder, "timeline.json")
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _, sizes = json.load(f)  # per moment, the bytes live in each category
    return max(sum(s) for s in sizes)


def measure(name, make, batch, features, steps=20):
    x, y = torch.randn(batch, features[0]), torch.randn(batch, features[1])
    rows = []
    for label, relu in (("nn.ReLU", nn.ReLU()), ("relu_ext save_mask", relu_ext.ReLU(save_mask=True))):
        model = make(relu)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            return loss.detach()

        torch.manual_seed(1)  # the same dropout masks for both
        losses = [step() for _ in range(steps)]
        rows.append({"model": name, "batch": batch, "relu": label, "saved": saved_bytes(model, x),
                     "peak": peak_bytes(step), "losses": torch.stack(losses)})
    same = torch.equal(rows[0]["losses"], rows[1]["losses"])
    for row in rows:
        row["losses_bitwise_equal"] = same
        row["losses"] = row["losses"].tolist()
    return rows


def table(rows):
    lines = ["| model | batch | relu | saved activations | peak | losses over 20 SGD steps |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['batch']} | {row['relu']} | {row['saved'] / MB:.1f} MB | "
                     f"{row['peak'] / MB:.1f} MB | {'bitwise equal' if row['losses_bitwise_equal'] else 'DIFFER'} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    rows = measure("Linear-ReLU-Dropout-Linear", mlp, args.batch, (1024, 1024))
    rows += measure("SimpleModel", simple_model, args.batch, (10, 1))
    text = table(rows)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads.\n\n{text}\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if not all(row["losses_bitwise_equal"] for row in rows):
        raise SystemExit("STOP: the loss trajectories differ")


if __name__ == "__main__":
    main()
