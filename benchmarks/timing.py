"""How relu_ext's benchmark times: impls of a case take turns, and ratios pair each round of one with the same round
of the other, so that a slow spell of a shared machine (it can last seconds) slows both sides of a pair."""
import contextlib
import io
import logging
import random
import statistics

# torch.utils.benchmark imports cpp_extension, which warns about a CUDA_HOME without a GPU (a log record in recent
# torch, a print to stderr in older releases): not this run's concern.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
with contextlib.redirect_stderr(io.StringIO()):
    import torch.utils.benchmark as benchmark

MIN_CALLS = 5  # timed calls per measurement, at least


class Runner:
    """Times cases and keeps their rows (one per case and sweep); `record` is called with each row as it is made."""

    def __init__(self, args, record=None):
        self.args = args
        self.rows = []
        self.record_hook = record

    def measure(self, stmt, env, min_run_time):
        timer = benchmark.Timer(stmt=stmt, globals=env, num_threads=self.args.threads)
        m = timer.blocked_autorange(min_run_time=min_run_time)
        if m.number_per_run * len(m.raw_times) < MIN_CALLS:
            # A large case: the budget bought one timed call after one warm-up call. Measured again, for at least
            # MIN_CALLS calls of the length just seen; the first pass was the warm-up.
            m = timer.blocked_autorange(min_run_time=MIN_CALLS * m.median)
        return m

    def share(self):
        """Seconds per impl and case in one sweep: --min-run-time spread over the sweeps."""
        return self.args.min_run_time / max(1, self.args.sweeps)

    def time(self, stmt, env):
        return self.measure(stmt, env, self.share()).median

    def turns(self, impls, more_rounds=1):
        """The impls' names in the order they are timed: --rounds (times more_rounds) rounds, A B .. then .. B A."""
        names = list(impls)
        for r in range(max(1, self.args.rounds) * more_rounds):
            yield from (names if r % 2 == 0 else names[::-1])

    def case(self, device, op, dtype_name, numel, bytes_moved, impls, copy_time, more_rounds=1):
        """Times each impl (relu_ext first, the torch reference second, more peers after), each round a share of
        the case's time, and records one row. more_rounds multiplies the rounds (each as long as before), for a
        case whose rounds scatter more than the others'."""
        rounds = max(1, self.args.rounds)
        round_times = {name: [] for name in impls}
        for name in self.turns(impls, more_rounds):
            stmt, env = impls[name]
            round_times[name].append(self.measure(stmt, env, self.share() / rounds).median)
        row = make_row(device, op, dtype_name, numel, bytes_moved, round_times, [copy_time] if copy_time else [])
        self.rows.append(row)
        if self.record_hook:
            self.record_hook(row)

    def combine(self):
        """One row per case from every sweep's rounds, the pairs kept: a slow spell of a few seconds, which can
        cover all the rounds of one case, then falls on one sweep of several."""
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
    """A result row from each impl's round times (relu_ext first, the torch reference second; round i of every impl
    from the same turn). Times are the medians of the rounds; a ratio is the median over rounds of the peer's time
    / relu_ext's in the same round (above 1: relu_ext is faster)."""
    times = {name: statistics.median(ts) for name, ts in round_times.items()}
    names = list(times)
    mine = round_times[names[0]]
    pairs = {k: [t / m for t, m in zip(ts, mine)] for k, ts in round_times.items() if k != names[0]}
    ratios = {k: statistics.median(r) for k, r in pairs.items()}
    copy_time = statistics.median(copy_times) if copy_times else None
    return {"device": device, "op": op, "dtype": dtype_name, "numel": numel, "bytes": bytes_moved, "sweeps": sweeps,
            "times_s": times, "round_times_s": round_times, "copy_times_s": copy_times,
            "gbps": {k: bytes_moved / t / 1e9 for k, t in times.items()},
            "ratio_vs_torch": ratios[names[1]], "ratios": ratios, "ratio_interval": interval(pairs[names[1]]),
            "copy_fraction": (copy_time / times[names[0]]) if copy_time else None}


def interval(ratios, draws=2000):
    """The 95% bootstrap interval of the median of the paired ratios (a fixed seed: the same rounds, the same
    interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws))
    return [medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]]
