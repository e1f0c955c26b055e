"""How relu_ext's benchmark reports: a line per row as it is measured, one ratio table at the end, and optionally
JSON, Markdown and a plot."""


def fmt_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def size_label(numel):
    return f"2^{numel.bit_length() - 1}" if numel & (numel - 1) == 0 else str(numel)


def print_row(row):
    times = row["times_s"]
    names = list(times)
    mine = times[names[0]]
    label, sub_label = f"{row['op']} ({row['device']})", f"{row['dtype']} {size_label(row['numel'])}"
    peers = "  ".join(f"{k} {fmt_time(t)} ({row['ratios'][k]:.2f}x)" for k, t in times.items() if k != names[0])
    limit = f"  {row['copy_fraction'] * 100:5.1f}% of copy" if row["copy_fraction"] else ""
    rate = f"{row['gbps'][names[0]]:7.1f} GB/s  " if row["bytes"] else ""
    print(f"{label:<28} {sub_label:<14} {names[0]} {fmt_time(mine):>9} {rate}ratio {row['ratio_vs_torch']:5.2f}{limit}"
          f"  | {peers}", flush=True)


def ratio_tables(rows):
    """Markdown tables: per device, the ratio against each peer by op, dtype and size (against torch with its 95%
    interval), then the training steps."""
    lines = []
    for device in sorted({r["device"] for r in rows}):
        sel = [r for r in rows if r["device"] == device and r["bytes"]]
        sizes = sorted({r["numel"] for r in sel})
        lines += [f"### {device}", ""]
        if sel:
            lines += ["| op | dtype | peer | " + " | ".join(size_label(n) for n in sizes) + " |",
                      "|---|---|---|" + "---|" * len(sizes)]
        # By dtype, then op, each A/A control under the row it controls.
        order = sorted({(r["op"], r["dtype"]) for r in sel}, key=lambda k: (k[1], k[0].split(",")[0], k[0]))
        for op, dtype in order:
            cells = {r["numel"]: r for r in sel if (r["op"], r["dtype"]) == (op, dtype)}
            peers = list(next(iter(cells.values()))["ratios"])
            for peer in peers:
                row = [f"{cells[n]['ratios'][peer]:.2f}" + (" ({:.2f}-{:.2f})".format(*cells[n]["ratio_interval"])
                                                            if peer == peers[0] else "")
                       if n in cells else "" for n in sizes]
                lines.append(f"| {op} | {dtype} | {peer} | " + " | ".join(row) + " |")
        steps = [r for r in rows if r["device"] == device and not r["bytes"]]
        if steps:
            lines += ["", "| training step | batch | timed | against | ratio (95% interval) |", "|---|---|---|---|---|"]
            for r in steps:
                names = list(r["times_s"])
                low, high = r["ratio_interval"]
                lines.append(f"| {r['op']} | {r['numel']} | {names[0]} {fmt_time(r['times_s'][names[0]])} | "
                             f"{names[1]} {fmt_time(r['times_s'][names[1]])} | {r['ratio_vs_torch']:.3f} "
                             f"({low:.3f}-{high:.3f}) |")
        lines.append("")
    return "\n".join(lines)


def markdown(info, rows):
    head = [f"Machine: {info['cpu']}, {info['threads']} threads, {info.get('gpu', 'no GPU')}, torch {info['torch']}, "
            f"CPU capability {info['cpu_capability']}, THP_MEM_ALLOC_ENABLE={info['thp_mem_alloc']}, {info['date']}.",
            "", "Ratio = torch's time / relu_ext's in the same round, the median over "
            f"{info['sweeps']} sweeps x {info['rounds']} rounds, the impls taking turns (above 1: relu_ext is "
            "faster); in brackets, the 95% bootstrap interval of the ratio against torch over the paired rounds. An "
            "A/A control row times torch's impl of the row above it against itself: how far a ratio scatters here "
            "when nothing differs.", ""]
    return "\n".join(head) + ratio_tables(rows)


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: --plot needs matplotlib (pip install matplotlib); no plot written to {path}")
        return
    panels = sorted({(r["device"], r["op"], r["dtype"]) for r in rows if r["bytes"] and "control" not in r["op"]})
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
