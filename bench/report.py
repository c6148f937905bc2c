"""The suite's report: a table for the terminal, our figures as ratios to the references, the
JSON with every raw figure and two PNG plots (rate vs failures, latency percentiles)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OURS = "softswitch"


def _best(result: dict[str, Any]) -> float | None:
    """The headline figure of a system in a workload: the median achieved at the best level
    (workload 4: bytes per held call)."""
    if result.get("status") != "ok":
        return None
    if result["workload"] == "4":
        value = result.get("bytes_per_call")
        return float(value) if isinstance(value, int | float) else None
    summary = result.get("summary") or {}
    achieved = summary.get("achieved") or {}
    return achieved.get("median") if summary.get("best_level") else 0.0


def ratios(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our headline figure over each reference's, per workload (for workload 4 a figure of
    memory, where lower is better)."""
    out = []
    for ours in (r for r in results if r["system"] == OURS):
        mine = _best(ours)
        for ref in (
            r for r in results if r["workload"] == ours["workload"] and r["system"] != OURS
        ):
            theirs = _best(ref)
            ratio = round(mine / theirs, 3) if mine is not None and theirs else None
            out.append(
                {
                    "workload": ours["workload"],
                    "reference": ref["system"],
                    "ours": mine,
                    "theirs": theirs,
                    "ratio": ratio,
                    "limits": {"ours": limit(ours), "theirs": limit(ref)},
                    "figure": "bytes per call (lower is better)"
                    if ours["workload"] == "4"
                    else "best clean rate (higher is better)",
                }
            )
    return out


SATURATED_CPU_PCT = 70.0  # of one core: our switch and each Kamailio worker use one


def limit(result: dict[str, Any]) -> str:
    """What stopped the ladder: "CPU" when the system used most of a core at its best rate,
    "not CPU" when it had CPU to spare (the load generator, the machine's other load or the
    system's latency set the limit; a ratio against it understates the difference)."""
    summary = result.get("summary") or {}
    cpu = summary.get("cpu_pct")
    if result.get("status") != "ok" or not cpu or result["workload"] == "5":
        return ""
    return "CPU" if cpu["median"] >= SATURATED_CPU_PCT else "not CPU"


def _spread(summary: dict[str, Any], key: str, digits: int = 0) -> str:
    figure = summary.get(key)
    if not figure:
        return "-"
    median, low, high = (round(figure[k], digits) for k in ("median", "min", "max"))
    text = f"{median:g}"
    return text if low == high else f"{text} ({low:g}-{high:g})"


def table(results: Sequence[dict[str, Any]], units: dict[str, str]) -> str:
    """One row per workload and system: best rate (median, spread), p50/p99, CPU, RSS, ratio."""
    header = (
        "wl",
        "system",
        "best clean",
        "unit",
        "median achieved (spread)",
        "p50 ms",
        "p99 ms",
        "CPU %",
        "SIPp CPU %",
        "limit",
        "peak RSS MiB",
        "ours / this",
    )
    rows: list[tuple[str, ...]] = [header]
    by_pair = {(r["workload"], r["reference"]): r["ratio"] for r in ratios(results)}
    for r in results:
        summary = r.get("summary") or {}
        rss = r.get("peak_rss_kib")
        ratio = by_pair.get((r["workload"], r["system"]))
        if r["workload"] == "4" and r["status"] == "ok":
            best, unit = str(r.get("concurrent_calls")), "calls"
            achieved = f"{r.get('bytes_per_call')} B/call"
            cpu = str(r.get("held_cpu_pct") if r.get("held_cpu_pct") is not None else "-")
        elif r["status"] == "ok":
            best = f"{summary['best_level']:g}" if summary.get("best_level") else "none clean"
            unit = units.get(r["workload"], "")
            achieved = _spread(summary, "achieved")
            cpu = _spread(summary, "cpu_pct")
        else:
            best, unit, achieved, cpu = r["status"], "", r.get("reason", "")[:40], "-"
        rows.append(
            (
                r["workload"],
                r["system"],
                best,
                unit,
                achieved,
                _spread(summary, "p50_ms", 2),
                _spread(summary, "p99_ms", 2),
                cpu,
                _spread(summary, "uac_cpu_pct"),
                limit(r),
                f"{rss / 1024:.0f}" if isinstance(rss, int) else "-",
                f"{ratio:.2f}" if isinstance(ratio, float) else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], results: Sequence[dict[str, Any]]) -> Path:
    path.write_text(
        json.dumps(
            {"meta": meta, "results": list(results), "ratios": ratios(results)},
            indent=2,
            default=str,
        )
    )
    return path


def write_plots(
    stem: Path, results: Sequence[dict[str, Any]], titles: dict[str, str]
) -> list[Path]:
    """`<stem>-failures.png`: failed fraction against offered level, one panel per workload;
    `<stem>-latency.png`: p50 and p99 at the best level, per workload and system."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    laddered = [r for r in results if r.get("trials")]
    workloads = sorted({r["workload"] for r in laddered})
    paths = []

    failures = stem.with_name(stem.name + "-failures.png")
    fig, axes = plt.subplots(
        1, max(1, len(workloads)), figsize=(4.5 * max(1, len(workloads)), 3.8), squeeze=False
    )
    for ax, key in zip(axes[0], workloads or [""], strict=False):
        for n, r in enumerate(r for r in laddered if r["workload"] == key):
            # o: a clean run, x: not clean (failures, or too slow: achieved < 95 % offered)
            color = f"C{n}"
            for clean, marker in ((True, "o"), (False, "x")):
                trials = [t for t in r["trials"] if t["clean"] is clean]
                ax.scatter(
                    [t["level"] for t in trials],
                    [100 * t["failure_fraction"] for t in trials],
                    marker=marker,
                    color=color,
                    alpha=0.8,
                    label=f"{r['system']} {'clean' if clean else 'not clean'}",
                )
        ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{key}: {titles.get(key, '')}", fontsize=9)
        ax.set_xlabel("offered level (x: not clean)")
        ax.set_ylabel("failed %")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(0, 100)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(failures, dpi=100)
    plt.close(fig)
    paths.append(failures)

    latency = stem.with_name(stem.name + "-latency.png")
    bars = [
        (f"{r['workload']} {r['system']} @{r['summary']['best_level']:g}", r["summary"])
        for r in laddered
        if r.get("summary")
    ]
    bars = [(label, s) for label, s in bars if s.get("p50_ms") and s.get("p99_ms")]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(bars) + 2), 4))
    xs = range(len(bars))
    ax.bar([x - 0.2 for x in xs], [s["p50_ms"]["median"] for _, s in bars], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [s["p99_ms"]["median"] for _, s in bars], 0.4, label="p99")
    ax.set_xticks(list(xs), [label for label, _ in bars], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("response time at the best rate, ms")
    ax.set_title(
        "SIPp response time p50 / p99 at each system's best rate (@); workload 5: "
        "RTP transit delay / added jitter",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(latency, dpi=100)
    plt.close(fig)
    paths.append(latency)
    return paths
