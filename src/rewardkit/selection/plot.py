"""The selection plot: the score (and each distinct component) per checkpoint, the best marked.

matplotlib is imported on demand, through a Figure and its Agg canvas (no pyplot backend switch).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_bytes
from rewardkit.selection.checkpoints import Selection


def plot_series(selection: Selection) -> dict[str, list[float | None]]:
    """What the plot draws: each distinct series once (a score equal to its only component is drawn as the score)."""
    cps = selection.checkpoints
    series = {a: [c.components.get(a) for c in cps] for a in selection.components}
    score = [c.value(selection.aggregate) for c in cps]
    same = [a for a, ys in series.items() if ys == score]
    for alias in same:
        series.pop(alias)
    label = f"score = {same[0]}" if len(same) == 1 and not series else "score"
    series[label] = score
    return series


PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "eps", "ps")  # matplotlib writes these without extras


def plot_format(path: str | Path) -> str:
    """The image format a plot path's suffix names; a missing or unknown suffix is a ConfigError."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise ConfigError(
            f"--plot {str(path)!r}: the suffix {('.' + suffix) if suffix else '(none)'!r} names no "
            "image format written here.",
            hint=f"end the name with .{', .'.join(PLOT_FORMATS)} (e.g. scores.png).",
        )
    return "jpeg" if suffix == "jpg" else suffix


def write_plot(
    selection: Selection,
    path: str | Path,
    *,
    rows: str = "validation",
    extra: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """A plot of the score (and each distinct component mean) per checkpoint, the best marked, in the format
    the path's suffix names (PLOT_FORMATS: .png, .svg, .pdf...).

    `rows` says what was scored (shown with the row count); `extra` adds labelled points, e.g.
    {"test EM of the best": (step, value)}.
    """
    image_format = plot_format(path)
    # Figure + Agg canvas instead of pyplot: no global backend switch inside a user's session.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cps = selection.checkpoints
    steps = [c.step for c in cps if c.step is not None]
    epochs = [c.epoch for c in cps if c.epoch is not None]
    xs: Sequence[float]
    if len(steps) == len(cps):
        xs, xlabel = steps, "step"
    elif len(epochs) == len(cps):
        xs, xlabel = epochs, "epoch"
    else:
        xs, xlabel = list(range(len(cps))), "checkpoint (file order)"
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, ys in plot_series(selection).items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                linewidth=2.5 if label.startswith("score") else 1.2,
                label=label,
            )
    band = [(x, c.ci_low, c.ci_high) for x, c in zip(xs, cps) if c.ci_low is not None and c.ci_high is not None]
    if band:
        ax.fill_between(
            [b[0] for b in band],
            [b[1] for b in band],
            [b[2] for b in band],
            alpha=0.2,
            label=f"score 95% CI ({selection.resamples} paired resamples)",
        )
    train = [(x, c.train_reward) for x, c in zip(xs, cps) if c.train_reward is not None]
    if train:  # the training reward on its own axis: a climb here while the score falls is the hacking sign
        twin = ax.twinx()
        twin.plot(
            [t[0] for t in train],
            [t[1] for t in train],
            color="tab:red",
            linestyle=":",
            marker="x",
            label="training reward (TRL log)",
        )
        twin.set_ylabel("training reward", color="tab:red")
        twin.legend(fontsize=8, loc="lower right")
    best = selection.best
    by = best.value(selection.aggregate) if best is not None else None
    if best is not None and by is not None:  # the best is always a scored checkpoint (pick_best)
        bx = xs[cps.index(best)]
        ax.axvline(bx, color="grey", linestyle="--", linewidth=1, label=f"best: {best.name} ({by:.3f})")
        ax.plot([bx], [by], marker="*", markersize=14, color="gold", markeredgecolor="black", zorder=5)
    for label, (x, y) in (extra or {}).items():
        ax.plot([x], [y], marker="D", markersize=8, linestyle="none", label=f"{label} ({y:.3f})", zorder=5)
    counts = sorted({c.count for c in cps})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{selection.aggregate} score")
    ax.set_title(f"{selection.expression} on {n} {rows} rows per checkpoint", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=image_format)
    return atomic_write_bytes(path, buf.getvalue())
