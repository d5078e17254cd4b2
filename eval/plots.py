"""PNG plots of a report (matplotlib, Agg backend: no display needed): bits/char and latency per model."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bits_per_char(report: dict, path: Path) -> Path | None:
    test = report["results"].get("test", {})
    rows = [(name, test[name].get("bits_per_char")) for name in report["model_order"] if name in test]
    rows = [(name, v) for name, v in rows if v is not None]
    if not rows:
        return None
    plt = _pyplot()
    recommended = (report.get("recommended") or {}).get("name")
    colors = ["tab:green" if name == recommended else
              ("tab:blue" if report["models"][name]["comparable"] else "tab:gray") for name, _ in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 2), 3.5))
    bars = ax.bar([n for n, _ in rows], [v for _, v in rows], color=colors)
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylabel("bits per character (lower is better)")
    ax.set_title("Test split: bits/char of the gold result\n(green: recommended, gray: English side, not comparable)",
                 fontsize=10)
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_latency(report: dict, path: Path) -> Path | None:
    timing = report.get("timing", {}).get("models", {})
    per_model = {name: timing[name] for name in report["model_order"] if name in timing}
    series = {}  # preset -> [(model, p50, p95)]
    for name, timing in per_model.items():
        for preset, t in timing.get("playthrough", {}).items():
            series.setdefault(preset, []).append((name, t["latency_p50_s"], t["latency_p95_s"]))
    if not series:
        return None
    plt = _pyplot()
    names = list(per_model)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.5))
    for k, (preset, rows) in enumerate(series.items()):
        xs = [names.index(n) + (k - (len(series) - 1) / 2) * width for n, _, _ in rows]
        p50 = [v for _, v, _ in rows]
        p95 = [v for _, _, v in rows]
        ax.bar(xs, p50, width=width, label=f"{preset} p50",
               yerr=[[0] * len(rows), [b - a for a, b in zip(p50, p95)]], capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("seconds per turn (whisker: p95)")
    ax.set_title("Play-through: latency per turn")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(report: dict, out_dir: Path) -> list[Path]:
    made = [plot_bits_per_char(report, out_dir / "bits_per_char.png"), plot_latency(report, out_dir / "latency.png")]
    return [p for p in made if p is not None]
