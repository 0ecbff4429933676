"""Pictures of the ESTIMATED liquidation heatmap: a PNG (matplotlib) and a self-contained HTML file
(plotly, with plotly.js embedded from the installed package: no CDN, it works offline).

Both show standing liquidation notional (long and short layers summed) by time and price in a
dark-to-yellow colour scale (yellow = dense, as traders expect), with the candles drawn over it,
and say ESTIMATED in the title. The dashboard reuses :func:`heatmap_figure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.errors import UsageError

if TYPE_CHECKING:
    from perpscope.services.liquidations import HeatmapReport

__all__ = ["HeatmapView", "heatmap_figure", "heatmap_view", "render_heatmap"]


@dataclass(frozen=True, slots=True)
class HeatmapView:
    """The part of a heatmap a picture shows: times, prices, notional and the candles."""

    times: list[Any]
    prices: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]  # (prices, times), USD
    candles: pl.DataFrame
    title: str

    @property
    def zmax(self) -> float:
        """Top of the colour scale: the 99.5th percentile of the non-empty cells, so one seeded
        or piled-up bin does not wash out the rest (cells above it show at full yellow)."""
        cells = self.z[self.z > 0]
        return float(np.quantile(cells, 0.995)) if cells.size else 1.0


def heatmap_view(report: HeatmapReport, *, days: float = 30.0, margin: float = 0.15) -> HeatmapView:
    """The last ``days`` of the heatmap, prices within ``margin`` beyond the candles' range."""
    hm = report.heatmap
    snap_ts = hm.snap_ts
    end = snap_ts[-1]
    keep_t = (snap_ts >= end - timedelta(days=days)).to_numpy()
    candles = report.candles.filter(pl.col("ts") >= end - timedelta(days=days))
    lo = float(candles["l"].min()) * (1 - margin)  # type: ignore[arg-type]
    hi = float(candles["h"].max()) * (1 + margin)  # type: ignore[arg-type]
    keep_p = (hm.bin_px >= lo) & (hm.bin_px <= hi)
    if hm.heat_long.shape[1] < hm.bin_px.size and keep_t.any():
        # rows keep a window around their own close: show only prices every shown row covers
        starts = hm.heat_start[keep_t]
        cols = np.arange(hm.bin_px.size)
        keep_p &= (cols >= starts.max()) & (cols < starts.min() + hm.heat_long.shape[1])
    heat_l, heat_s = hm.heat_rows(keep_t)
    z = (heat_l + heat_s).astype(np.float64)[:, keep_p].T
    title = (
        f"ESTIMATED liquidation heatmap, {report.venue} {report.instrument} "
        f"(map at {report.ts:%Y-%m-%d %H:%M}Z, last {report.price:,.6g})"
    )
    return HeatmapView(
        snap_ts.filter(pl.Series(keep_t)).to_list(), hm.bin_px[keep_p], z, candles, title
    )


def _day_numbers(ts: pl.Series) -> npt.NDArray[np.float64]:
    """Matplotlib's date numbers (days since 1970-01-01 UTC)."""
    return np.asarray(ts.dt.epoch("us").cast(pl.Float64).to_numpy() / 86_400e6)


def _png(view: HeatmapView, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    fig, ax = plt.subplots(figsize=(14, 7), dpi=110)
    ax.set_facecolor("black")
    t = _day_numbers(pl.Series(view.times))
    vmax = view.zmax
    mesh = ax.pcolormesh(
        t, view.prices, view.z, shading="nearest", cmap="inferno", norm=PowerNorm(0.5, 0, vmax)
    )
    fig.colorbar(mesh, ax=ax, label="standing liquidation notional per 0.1% bin, USD (ESTIMATED)")
    c = view.candles
    ct = _day_numbers(c["ts"])
    width = float(np.median(np.diff(ct))) * 0.7 if len(ct) > 1 else 1 / 24
    up = (c["c"] >= c["o"]).to_numpy()
    colours = ["#26a69a" if u else "#ef5350" for u in up.tolist()]
    ax.vlines(ct, c["l"].to_numpy(), c["h"].to_numpy(), colors=colours, linewidth=0.6)
    body_lo = np.minimum(c["o"].to_numpy(), c["c"].to_numpy())
    body = np.abs(c["c"].to_numpy() - c["o"].to_numpy())
    ax.bar(ct, body, width, bottom=body_lo, color=colours, edgecolor=colours, linewidth=0)
    ax.set_ylim(float(view.prices.min()), float(view.prices.max()))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    ax.set_title(view.title)
    ax.set_ylabel("price")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def heatmap_figure(view: HeatmapView) -> Any:
    """A plotly figure of the view: heatmap (Inferno scale) with candlesticks over it."""
    import plotly.graph_objects as go

    c = view.candles
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=view.times,
            y=view.prices,
            z=np.sqrt(view.z),
            customdata=view.z,
            colorscale="Inferno",
            zmin=0.0,
            zmax=float(np.sqrt(view.zmax)),
            colorbar={"title": "sqrt(USD)"},
            hovertemplate="%{x}<br>price %{y:,.6g}<br>ESTIMATED %{customdata:$,.0f}<extra></extra>",
            name="ESTIMATED liquidations",
        )
    )
    fig.add_trace(
        go.Candlestick(
            x=c["ts"].to_list(),
            open=c["o"].to_list(),
            high=c["h"].to_list(),
            low=c["l"].to_list(),
            close=c["c"].to_list(),
            name="price",
        )
    )
    fig.update_layout(
        title=view.title,
        template="plotly_dark",
        xaxis_rangeslider_visible=False,
        yaxis_title="price",
        height=700,
    )
    return fig


def render_heatmap(report: HeatmapReport, path: Path, *, days: float = 30.0) -> Path:
    """Write the heatmap picture to ``path`` (``.png`` or ``.html``, chosen by the suffix).

    Raises:
        UsageError: another suffix, or a directory that does not exist.
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise UsageError(f"--out {path}: use a .png or .html file name")
    if not path.parent.exists():
        raise UsageError(f"--out {path}: directory {path.parent} does not exist")
    view = heatmap_view(report, days=days)
    if suffix == ".png":
        _png(view, path)
    else:
        heatmap_figure(view).write_html(path, include_plotlyjs=True, full_html=True)
    return path
