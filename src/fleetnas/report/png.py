"""The report's figures as PNG files for papers (matplotlib, Agg canvas, no pyplot state).

Every figure is drawn into memory first and the files are written only when all of them
succeeded, each atomically (temporary file, then rename), so a failure leaves no half-written
set behind."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fleetnas.errors import InputError
from fleetnas.fileio import atomic_write_bytes
from fleetnas.report.figures import FigureSpec

_MARKERS = {
    "circle": ("o", True),
    "circle-open": ("o", False),
    "star": ("*", True),
    "x": ("x", True),
    "diamond-open": ("D", False),
    "square": ("s", True),
    "triangle-down": ("v", True),
}


def _scatter_size(plotly_size: float) -> float:
    """Plotly marker diameter (px) -> matplotlib scatter area (pt²), roughly equal on paper."""
    return (0.75 * plotly_size) ** 2


def draw(spec: FigureSpec, dpi: int = 150) -> bytes:
    """PNG bytes of one drawn figure spec."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if spec.heatmap is not None:
        k = len(spec.heatmap.labels)
        size = max(5.0, 0.32 * k + 3.0)
        fig = Figure(figsize=(size + 1.2, size), dpi=dpi)
    else:
        fig = Figure(figsize=(7.5, 4.6), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax2 = ax.twinx() if any(s.y2 for s in spec.series) else None
    bars = [s for s in spec.series if s.kind == "bar"]
    bottoms: dict[float, float] = {}
    width = (
        float(np.min(np.diff(np.unique(bars[0].x)))) * 0.9
        if bars and len(np.unique(bars[0].x)) > 1
        else 0.8
    )
    for s in spec.series:
        target = ax2 if (s.y2 and ax2 is not None) else ax
        label = s.name if s.legend else None
        if s.kind == "bar":
            base = np.array([bottoms.get(x, 0.0) for x in s.x.tolist()])
            target.bar(
                s.x, s.y, width=width, bottom=base, color=s.color, alpha=s.opacity, label=label
            )
            for x, y, b in zip(s.x.tolist(), s.y.tolist(), base.tolist(), strict=True):
                bottoms[x] = b + y
            continue
        marker, filled = _MARKERS[s.symbol]
        if "lines" in s.kind:
            target.plot(
                s.x,
                s.y,
                color=s.color,
                linestyle=":" if s.dash else "-",
                linewidth=1.4,
                drawstyle="steps-post" if s.step else "default",
                marker=marker if "markers" in s.kind else None,
                markersize=0.75 * s.size,
                alpha=s.opacity,
                label=label,
            )
        else:
            target.scatter(
                s.x,
                s.y,
                s=_scatter_size(s.size),
                marker=marker,
                c=s.color if filled else "none",
                edgecolors=None if marker == "x" else (s.color if not filled else "none"),
                linewidths=1.2 if not filled else None,
                alpha=s.opacity,
                label=label,
                zorder={"star": 4, "diamond-open": 3}.get(s.symbol, 2),
            )
    for ln in spec.lines:
        if ln.axis == "x":
            ax.axvline(ln.value, color=ln.color, linestyle="--", linewidth=1.1)
            ax.annotate(
                ln.label,
                (ln.value, 0.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color=ln.color,
                rotation=90,
                va="bottom",
                ha="right",
                xytext=(-4, 3),
                textcoords="offset points",
            )
        else:
            ax.axhline(ln.value, color=ln.color, linestyle="--", linewidth=1.1)
            ax.annotate(
                ln.label,
                (1.0, ln.value),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color=ln.color,
                va="bottom",
                ha="right",
                xytext=(-3, 2),
                textcoords="offset points",
            )
    if spec.heatmap is not None:
        hm = spec.heatmap
        z = np.ma.masked_invalid(np.asarray(hm.z, dtype=float))
        im = ax.imshow(z, vmin=hm.zmin, vmax=hm.zmax, cmap="viridis", aspect="equal")
        k = len(hm.labels)
        ax.set_xticks(range(k), hm.labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), hm.labels, fontsize=7)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label(hm.colorbar)
        if hm.annotate:
            mid = (hm.zmin + hm.zmax) / 2
            for i in range(k):
                for j in range(k):
                    if not np.ma.is_masked(z[i, j]):
                        ax.text(
                            j,
                            i,
                            f"{z[i, j]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="white" if z[i, j] < mid else "black",
                        )
    else:
        if spec.x_log:
            ax.set_xscale("log")
        if spec.x_integer:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, color="#e6e6e6", linewidth=0.6)
        if bars:
            ax.margins(y=0.12)
        ax.set_axisbelow(True)
    ax.set_title(spec.title, fontsize=10)
    ax.set_xlabel(spec.x_label)
    ax.set_ylabel(spec.y_label)
    if spec.y_range is not None:
        ax.set_ylim(*spec.y_range)
    if ax2 is not None:
        ax2.set_ylabel(spec.y2_label)
    handles, labels = ax.get_legend_handles_labels()
    if ax2 is not None:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="best", framealpha=0.85)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def file_name(spec: FigureSpec) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.key) + ".png"


def write_pngs(
    figures: Sequence[FigureSpec], out_dir: str | os.PathLike[str], dpi: int = 150
) -> list[Path]:
    """One PNG per drawn figure in ``out_dir`` (created if needed); returns the paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"PNG folder {out} is a file; expected a folder (it is created if absent)")
    rendered = [(file_name(s), draw(s, dpi)) for s in figures if s.drawn]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in rendered:
        paths.append(atomic_write_bytes(out / name, data))
    return paths
