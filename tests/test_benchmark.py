"""The benchmark's quick path, on tiny sizes with a tiny time budget: it runs, checks before timing, and writes the
documented JSON. No timing is asserted."""
import argparse
import json
import os
import sys
import time

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import benchmark  # noqa: E402
import cases  # noqa: E402
import memory  # noqa: E402
import report  # noqa: E402
import timing  # noqa: E402

TINY = ["--device", "cpu", "--quick", "--sizes", "10", "--dtypes", "float32,bfloat16", "--min-run-time", "0.001",
        "--batches", "1"]


def test_quick_run_writes_documented_json(tmp_path):
    path = tmp_path / "out.json"
    benchmark.main(TINY + ["--json", str(path)])
    data = json.loads(path.read_text())
    machine = data["machine"]
    for key in ("cpu", "cpu_count", "threads", "torch", "relu_ext", "cpu_capability"):
        assert key in machine, key
    ops = {(row["op"], row["dtype"]) for row in data["rows"]}
    controls = {("forward, A/A control", "float32"), ("forward in-place, A/A control", "float32"),
                ("backward, A/A control", "float32")}
    assert ops == controls | {("forward", "float32"), ("forward in-place", "float32"), ("backward", "float32"),
                              ("forward", "bfloat16"), ("forward in-place", "bfloat16"), ("backward", "bfloat16"),
                              ("forward save_mask", "float32"), ("backward from mask", "float32"),
                              ("forward save_mask", "bfloat16"), ("backward from mask", "bfloat16"),
                              ("SimpleModel train step", "float32")}
    for row in data["rows"]:
        for key in ("device", "numel", "bytes", "times_s", "gbps", "ratio_vs_torch", "ratio_interval", "copy_fraction"):
            assert key in row, key
        names = list(row["times_s"])
        if (row["op"], row["dtype"]) in controls:  # torch's impl of the case it follows, twice
            peer = {"forward": "torch.relu", "forward in-place": "torch.relu_",
                    "backward": "threshold_backward"}[row["op"].split(",")[0]]
            assert names == [peer, peer + " again"]
        else:
            assert names[0] == "relu_ext"
        assert all(t > 0 for t in row["times_s"].values()) and row["ratio_vs_torch"] > 0
    # The training step, the noisiest row, takes three times the rounds of the others.
    rounds = {row["op"]: len(next(iter(row["round_times_s"].values()))) for row in data["rows"]}
    assert rounds["SimpleModel train step"] == 3 * rounds["forward"] == 3 * data["machine"]["rounds"]


def test_stops_before_timing_a_wrong_kernel(monkeypatch):
    class WrongReLU(torch.nn.Module):
        def __init__(self, inplace=False):
            super().__init__()

        def forward(self, x):
            return x.abs()

    monkeypatch.setattr(cases.relu_ext, "ReLU", WrongReLU)
    with pytest.raises(SystemExit, match="STOP: relu_ext differs from nn.ReLU"):
        benchmark.main(TINY)


def test_plot_without_matplotlib_says_so(tmp_path, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    report.plot([], str(tmp_path / "x.png"))
    assert "needs matplotlib" in capsys.readouterr().out


def test_a_slow_statement_is_timed_at_least_min_calls_times():
    """One timed call is what a large case's share of the budget buys; the median needs several."""
    args = argparse.Namespace(threads=1, min_run_time=0.001, sweeps=1)
    m = timing.Runner(args).measure("time.sleep(0.02)", {"time": time}, 0.001)
    assert m.number_per_run * len(m.raw_times) >= timing.MIN_CALLS


def test_ratio_pairs_each_round_with_the_same_round_of_torch():
    """A slow spell that hits torch in one round and relu_ext in another must not decide the ratio: each round is a
    pair, timed back to back, and the ratio is the median over pairs (here 1.1 in two of three rounds)."""
    rounds = {"relu_ext": [2.0, 1.0, 1.0], "torch.relu": [2.2, 1.1, 4.0], "nn.ReLU": [4.0, 2.0, 2.0]}
    row = timing.make_row("cpu", "forward", "float32", 1024, 8192, rounds, [])
    assert row["ratio_vs_torch"] == pytest.approx(1.1)  # the ratio of the medians would say 2.2 / 1.0
    assert row["ratios"] == pytest.approx({"torch.relu": 1.1, "nn.ReLU": 2.0})
    assert row["times_s"] == {"relu_ext": 1.0, "torch.relu": 2.2, "nn.ReLU": 2.0}
    # Over sweeps, combine() keeps the pairs: round i of one impl still meets round i of the other.
    args = argparse.Namespace(threads=1, min_run_time=0.001, sweeps=2, rounds=3)
    runner = timing.Runner(args)
    runner.rows = [row, timing.make_row("cpu", "forward", "float32", 1024, 8192,
                                           {"relu_ext": [3.0, 3.0, 3.0], "torch.relu": [1.5, 1.5, 1.5],
                                            "nn.ReLU": [3.0, 3.0, 3.0]}, [])]
    (combined,) = runner.combine()
    assert combined["ratio_vs_torch"] == pytest.approx((1.1 + 0.5) / 2)  # six pairs: 1.1 1.1 4 0.5 0.5 0.5
    assert combined["sweeps"] == 2


def test_printed_summary_keeps_two_decimals(capsys):
    """The closing table prints each ratio as measured (0.99 stays 0.99), not rounded to one figure, with its
    interval."""
    row = timing.make_row("cpu", "forward", "float32", 4096, 32768,
                          {"relu_ext": [3.0e-4, 3.1e-4], "torch.relu": [2.97e-4, 3.07e-4]}, [])
    step = timing.make_row("cpu", "SimpleModel train step", "float32", 64, 0,
                           {"relu_ext": [2.0e-4], "nn.ReLU": [1.98e-4]}, None or [])
    table = report.ratio_tables([row, step])
    assert "| forward | float32 | torch.relu | 0.99 (0.99-0.99) |" in table
    assert "| SimpleModel train step | 64 | relu_ext 200 us | nn.ReLU 198 us | 0.990 (0.990-0.990) |" in table


def test_step_ratios_carry_their_bootstrap_interval():
    """The interval of the median paired ratio: it holds the median, lies within the ratios, and narrows with more
    rounds of the same scatter."""
    mine = [1.0] * 40
    theirs = [0.9, 0.95, 1.0, 1.05, 1.2] * 8
    row = timing.make_row("cpu", "step", "float32", 64, 0, {"relu_ext": mine, "nn.ReLU": theirs}, [])
    low, high = row["ratio_interval"]
    assert 0.9 <= low <= row["ratio_vs_torch"] == 1.0 <= high <= 1.2 and low < high
    fewer = timing.make_row("cpu", "step", "float32", 64, 0, {"relu_ext": mine[:5], "nn.ReLU": theirs[:5]}, [])
    assert fewer["ratio_interval"][1] - fewer["ratio_interval"][0] > high - low


def test_no_torch_warning_at_the_top_of_a_cpu_run(tmp_path):
    import subprocess
    run = subprocess.run([sys.executable, os.path.join(os.path.dirname(benchmark.__file__), "benchmark.py")] + TINY,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.startswith("relu_ext benchmark:")


def test_memory_script_counts_the_saved_output_against_the_mask():
    """benchmarks/memory.py on a small batch: the mask run saves the ReLU output's bytes less, and the mask's more."""
    batch = 64
    torch_row, mask_row = memory.measure("mlp", memory.mlp, batch, (1024, 1024), steps=3)
    output, mask = batch * 4096 * 4, batch * 4096 // 8
    assert torch_row["saved"] - mask_row["saved"] == output - mask
    assert 0 < mask_row["peak"] <= torch_row["peak"]  # at this batch the weights' gradients set the peak
    assert mask_row["losses_bitwise_equal"] and len(mask_row["losses"]) == 3
