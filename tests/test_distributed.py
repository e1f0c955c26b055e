"""Two processes (gloo, CPU, 127.0.0.1) train SimpleModel with relu_ext.ReLU under DistributedDataParallel."""
import gc
import os
import socket

import torch
import torch.multiprocessing as mp
from torch import nn

import relu_ext
from conftest import assert_same

STEPS = 20


def make_model(relu):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), relu, nn.Linear(20, 1)).double()


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 10, generator=g, dtype=torch.float64)
    return x, x[:, :1].relu() - x[:, 1:2]


def train(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(STEPS):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def worker(rank, port, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        x, y = data()
        shard = slice(rank * 16, rank * 16 + 16)
        results = {}
        for name, relu in (("relu_ext", relu_ext.ReLU()), ("nn", nn.ReLU())):
            ddp = nn.parallel.DistributedDataParallel(make_model(relu))
            results[name] = train(ddp, x[shard], y[shard])
            del ddp
        if rank == 0:
            torch.save(results, out_path)
        # Both ranks done and the DDP reducers gone before the group is torn down: a rank that tore down gloo while
        # the other still used it ended with "terminate called without an active exception" (SIGABRT), now and then.
        gc.collect()
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process(tmp_path):
    out_path = str(tmp_path / "weights.pt")
    ctx = mp.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=worker, args=(rank, port, out_path)) for rank in range(2)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=180)
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    results = torch.load(out_path)
    for mine, theirs in zip(results["relu_ext"], results["nn"]):
        assert_same(mine, theirs)  # DDP with relu_ext.ReLU == DDP with nn.ReLU, bit for bit
    x, y = data()
    single = train(make_model(relu_ext.ReLU()), x, y)
    for ddp_weight, single_weight in zip(results["relu_ext"], single):
        # gradients averaged across processes add in another order than one full-batch mean: equal to rounding
        torch.testing.assert_close(ddp_weight, single_weight, rtol=1e-12, atol=1e-12)
