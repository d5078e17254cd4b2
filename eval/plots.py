"""PNG plots of a report (matplotlib, Agg backend: no display needed): bits/char and action following with their
95% intervals, the training curves of every trained model, and latency per model (for timing.md)."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars_with_intervals(ax, report: dict, metric: str, ylabel: str, title: str) -> bool:
    test = report["results"].get("test", {})
    rows = [(name, test[name].get(metric), test[name].get(metric + "_ci95")) for name in report["model_order"]
            if name in test and test[name].get(metric) is not None]
    if not rows:
        ax.set_visible(False)
        return False
    recommended = (report.get("recommended") or {}).get("name")
    colors = ["tab:green" if name == recommended else
              ("tab:gray" if not report["models"][name]["comparable"] or report["models"][name].get("floor")
               else "tab:blue") for name, _, _ in rows]
    values = [v for _, v, _ in rows]
    errors = [[v - (ci[0] if ci else v) for _, v, ci in rows], [(ci[1] if ci else v) - v for _, v, ci in rows]]
    bars = ax.bar([n for n, _, _ in rows], values, color=colors, yerr=errors, capsize=4)
    ax.bar_label(bars, fmt="%.3f", padding=6)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=20)
    return True


def plot_bits_per_char(report: dict, path: Path) -> Path | None:
    """Test bits/char (lower is better) and action following (higher is better), whiskers: the 95% interval."""
    plt = _pyplot()
    n = len(report["model_order"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(7.0, 2.4 * n + 3), 3.8))
    drawn = _bars_with_intervals(left, report, "bits_per_char", "bits per character (lower is better)",
                                 "Test: bits/char of the gold reply\n(green: recommended; gray: floor or English "
                                 "side)")
    if drawn:
        _bars_with_intervals(right, report, "action_following", "bits/char gained from the real action",
                             "Test: action following (0: ignores the action)")
        right.axhline(0, color="black", linewidth=0.8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path if drawn else None


def plot_training_curves(report: dict, model_folders: dict[str, Path], path: Path) -> Path | None:
    """Train and validation loss against steps for every model with a training_metrics.json."""
    import json

    curves = {}
    for name in report["model_order"]:
        folder = model_folders.get(name)
        metrics_file = Path(folder) / "training_metrics.json" if folder else None
        if metrics_file and metrics_file.is_file():
            curves[name] = json.loads(metrics_file.read_text(encoding="utf-8"))
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (name, metrics) in enumerate(curves.items()):
        color = f"C{index}"
        train = metrics.get("train_loss_history") or []
        evals = metrics.get("eval_loss_history") or []
        if train:
            ax.plot([p["step"] for p in train], [p["loss"] for p in train], color=color, alpha=0.6,
                    label=f"{name} train")
        if evals:
            ax.plot([p["step"] for p in evals], [p["eval_loss"] for p in evals], color=color, marker="o",
                    linestyle="--", label=f"{name} validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("Training curves (training_metrics.json of each model folder)")
    ax.legend(fontsize=8)
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


def write_plots(report: dict, out_dir: Path, model_folders: dict[str, Path] | None = None) -> list[Path]:
    made = [plot_bits_per_char(report, out_dir / "bits_per_char.png"), plot_latency(report, out_dir / "latency.png"),
            plot_training_curves(report, model_folders or {}, out_dir / "training_curves.png")]
    return [p for p in made if p is not None]
