#!/usr/bin/env python3
"""Charts of a benchmark run, from the JSON bench/driver.py writes beside its tables.

    bench/plot.py RESULTS.json [--prefix PATH]

Writes PATH-<chart>.svg and .png (PATH defaults to RESULTS without .json),
one per part the run has: fanout-<size>B (per-receiver rate against N, a
panel per mode), latency (one-way and ping-pong percentiles per contender),
receivers-latency and receivers-throughput (the --receiver loads), tap (TCP
through the TAPs) and memory.  bench/run.sh calls it after the tables when
matplotlib is there (Debian: python3-matplotlib); the tables never need it.
"""
import argparse
import os
import statistics
import sys
from typing import Any, Callable, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402

# Text stays text in the SVG (searchable, small); the same run gives the same file.
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "ipnfs", "font.size": 9,
                     "axes.grid": True, "grid.alpha": 0.3})

Results = dict[tuple, list[Optional[dict[str, Any]]]]

QUANTILES = (("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("max", "max_us"))
NAMES = driver.CONTENDER_ORDER + [n for n in driver.RECEIVER_CONTENDERS
                                  if n not in driver.CONTENDER_ORDER]
# One colour per contender in every chart, so the eye follows it from one to the next.
COLOURS = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(NAMES)}


def colour(name: str) -> Any:
    return COLOURS.get(name, "black")


def order(names: set[str]) -> list[str]:
    return sorted(names, key=lambda n: (NAMES.index(n) if n in NAMES else len(NAMES), n))


def wide(values: list[float]) -> bool:
    """Log scale when the values span more than a factor of 20."""
    values = [v for v in values if v and v > 0]
    return bool(values) and max(values) / min(values) > 20


def save(fig: Any, prefix: str, chart: str, written: list[str]) -> None:
    fig.tight_layout()
    for ext in ("svg", "png"):
        path = f"{prefix}-{chart}.{ext}"
        fig.savefig(path, dpi=100, metadata={"Date": None} if ext == "svg" else None)
        written.append(path)
    plt.close(fig)


def quantiles(runs: list[Optional[dict[str, Any]]]) -> Optional[list[Optional[float]]]:
    """The median over the repetitions of each percentile a latency run reports."""
    ok = [r for r in runs if r]
    if not ok:
        return None
    return [driver.median([r.get(field) for r in ok]) for _, field in QUANTILES]


def percentile_panel(ax: Any, title: str, curves: dict[str, Optional[list[Optional[float]]]],
                     unit: str) -> None:
    """Percentiles on x, microseconds on a log y: a flat line is a steady
    contender, a steep one has a long tail."""
    xs = range(len(QUANTILES))
    for name in order(set(curves)):
        q = curves[name]
        if not q:
            ax.plot([], [], label=f"{name} (failed)", color=colour(name))
            continue
        pts = [(x, v) for x, v in zip(xs, q) if v is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name,
                color=colour(name))
    ax.set_xticks(list(xs), [label for label, _ in QUANTILES])
    ax.set_yscale("log")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(fontsize=7)


def fanout_charts(results: Results, prefix: str, written: list[str]) -> None:
    fan = {k: v for k, v in driver.summarize_fanout(results).items()}
    for size in sorted({k[1] for k in fan}):
        modes = [m for m in ("lossless", "lossy") if any(k[1] == size and k[3] == m for k in fan)]
        if not modes:
            modes = ["-"]
        fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4), squeeze=False,
                                 sharey=True)
        rates = [s["per"] for k, s in fan.items() if s and k[1] == size]
        for ax, mode in zip(axes[0], modes):
            # null FUSE carries nothing and has no mode: the floor of a FUSE
            # round trip, drawn dashed in every panel.
            keys = [k for k in fan if k[1] == size and (k[3] == mode or k[3] == "-")]
            for name in order({k[2] for k in keys}):
                pts = sorted((k[0], fan[k]["per"]) for k in keys
                             if k[2] == name and fan[k] and fan[k]["per"])
                label = driver.mode_label(name, mode) if name in ("pipes", "AF_UNIX dgram") \
                    else None
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        linestyle="--" if name == "null FUSE" else "-", color=colour(name),
                        label=f"{name}: {label}" if label else name)
            ns = sorted({k[0] for k in keys})
            if len(ns) > 1:
                ax.set_xscale("log", base=2)
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.minorticks_off()
            if wide(rates):
                ax.set_yscale("log")
            ax.set_xlabel("receivers N")
            ax.set_ylabel("per-receiver msg/s (median)")
            ax.set_title(f"one sender to N receivers, {size} B, {mode}")
            ax.legend(fontsize=7)
        save(fig, prefix, f"fanout-{size}B", written)


def latency_chart(results: Results, prefix: str, written: list[str]) -> None:
    ns = sorted({k[1] for k in results if k[0] == "latency"})
    panels: list[tuple[str, dict[str, Any]]] = []
    for n in ns:
        panels.append((f"one-way latency, N={n}, 64 B paced",
                       {k[2]: quantiles(v) for k, v in results.items()
                        if k[0] == "latency" and k[1] == n}))
    pp = {k[1]: quantiles(v) for k, v in results.items() if k[0] == "pingpong"}
    if pp:
        panels.append(("ping-pong round trip, N=1, 64 B", pp))
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels):
        percentile_panel(ax, title, curves, "µs (median of the repetitions)")
    save(fig, prefix, "latency", written)


def receivers_charts(results: Results, prefix: str, written: list[str]) -> None:
    waits = [w for w in driver.RECEIVERS if any(k[:2] == ("recv", w) for k in results)]
    if not waits:
        return
    fig, axes = plt.subplots(1, len(waits), figsize=(4.5 * len(waits), 4), squeeze=False,
                             sharey=True)
    for ax, wait in zip(axes[0], waits):
        curves = {k[2]: quantiles(v) for k, v in results.items()
                  if k[:2] == ("recv", wait) and k[3] == "latency"}
        percentile_panel(ax, f"one-way latency, N=1: {driver.RECEIVER_LABEL[wait]}", curves,
                         "µs (median of the repetitions)")
    save(fig, prefix, "receivers-latency", written)

    modes = [m for m in ("lossless", "lossy") if any(k[0] == "recv" and k[3] == m
                                                     for k in results)]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        names = order({k[2] for k in results if k[0] == "recv" and k[3] == mode})
        width = 0.8 / len(waits)
        for i, wait in enumerate(waits):
            heights = []
            for name in names:
                ok = [r for r in results.get(("recv", wait, name, mode), []) if r]
                heights.append(driver.median([r["rates"][0] for r in ok]) or 0)
            ax.bar([j + i * width for j in range(len(names))], heights, width,
                   label=driver.RECEIVER_LABEL[wait])
        ax.set_xticks([j + width * (len(waits) - 1) / 2 for j in range(len(names))], names,
                      rotation=20, ha="right")
        if wide([r["rates"][0] for k, v in results.items()
                 if k[0] == "recv" and k[3] == mode for r in v if r]):
            ax.set_yscale("log")
        ax.set_ylabel("msg/s, 1→1, 64 B (median)")
        ax.set_title(f"throughput by receiver, {mode}")
        ax.legend(fontsize=7)
    save(fig, prefix, "receivers-throughput", written)


def tap_chart(results: Results, prefix: str, written: list[str]) -> None:
    tap = driver.tap_summary(results)
    if not tap:
        return
    names = list(tap)
    mbit = [tap[n]["mbit"] if tap[n] else 0 for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(names) + 1.2))
    bars = ax.barh(names, mbit, color=["tab:blue" if n.startswith("ipnfs") else "tab:gray"
                                       for n in names])
    ax.bar_label(bars, [f"{v:,.0f}" if tap[n] else "failed" for n, v in zip(names, mbit)],
                 padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("TCP Mbit/s, TAP to TAP, iperf3 (median)")
    ax.set_title("TAP to TAP TCP between two network namespaces")
    ax.margins(x=0.15)
    save(fig, prefix, "tap", written)


def memory_chart(mem: Optional[dict[str, Any]], prefix: str, written: list[str]) -> None:
    if not mem:
        return
    growth = {n: v for n, v in sorted(mem["growth"].items()) if v}
    stall = mem.get("stall")
    fig, axes = plt.subplots(1, 2 if stall else 1, figsize=(11 if stall else 5.5, 4),
                             squeeze=False)
    ax = axes[0][0]
    ns = list(growth)
    ax.plot(ns, [growth[n]["before_kb"] / 1024 for n in ns], marker="o", label="RSS before")
    ax.plot(ns, [growth[n]["peak_kb"] / 1024 for n in ns], marker="o", label="peak (VmHWM)")
    if len(ns) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("receivers N")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("daemon MiB")
    ax.set_title(f"daemon memory, lossless hub, queue {mem['queue']}")
    ax.legend(fontsize=7)
    if stall:
        ax = axes[0][1]
        series = stall["rss_series_kb"]
        step = stall["seconds"] / max(1, len(series) - 1)
        ax.plot([i * step for i in range(len(series))], [kb / 1024 for kb in series],
                label="RSS")
        ax.axhline((stall["base_kb"] + stall["bound_kb"]) / 1024, color="tab:red",
                   linestyle="--", label="before + queue bound")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("seconds")
        ax.set_ylabel("daemon MiB")
        ax.set_title(f"{stall['stalled']} of {stall['n']} readers stalled")
        ax.legend(fontsize=7)
    save(fig, prefix, "memory", written)


CHARTS: list[Callable[[Results, str, list[str]], None]] = [
    fanout_charts, latency_chart, receivers_charts, tap_chart]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="the .json bench/driver.py wrote beside its tables")
    ap.add_argument("--prefix", help="charts are PREFIX-<chart>.svg/.png (default: RESULTS "
                    "without .json)")
    args = ap.parse_args()
    prefix = args.prefix or os.path.splitext(args.results)[0]
    _, results, mem = driver.load_results(args.results)
    written: list[str] = []
    for chart in CHARTS:
        chart(results, prefix, written)
    memory_chart(mem, prefix, written)
    for path in written:
        print(path)
    if not written:
        print(f"plot: {args.results} holds no part that has a chart (scale, paired)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
