"""The simulator with each numba kernel swapped for the numpy code it replaced (bench peers only).

``numpy_path()`` rebinds, for the duration of a ``with`` block, the kernel names the engine and
the position book call to the ``*_reference`` functions of :mod:`perpscope.sim._kernels` (and the
mark price to :func:`perpscope.sim.market.mark_price`): the same engine, loops in numpy. The
benchmarks time both paths in one process and check that they give identical tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from perpscope.sim import _kernels as k
from perpscope.sim import engine, positions
from perpscope.sim.market import mark_price

_SWAPS = {
    engine: {
        "crossed_positions": k.crossed_reference,
        "due_positions": k.due_reference,
        "house_update": k.house_reference,
        "mark_kernel": mark_price,
        "review_positions": k.review_reference,
        "spot_update": k.spot_reference,
        "thresholds_kernel": k.thresholds_reference,
        "add_volume": k.volume_reference,
        "track_levels": k.track_reference,
        "premium_update": k.premium_reference,
        "feed_response": k.feed_reference,
        "draw_positions": k.draw_reference,
        "close_orders": k.close_reference,
        "spot_orders": k.spot_orders_reference,
        "mark_hit": k.mark_hit_reference,
        "bar_open": k.bar_open_reference,
        "bar_close": k.bar_close_reference,
        "close_fills": k.close_fills_reference,
        "open_fills": k.open_fills_reference,
        "step_news": k.step_news_reference,
        "step_moods": k.step_moods_reference,
        "step_end": k.step_end_reference,
        "open_move": k.open_move_reference,
        "long_share": k.long_share_reference,
        "long_prob": k.long_prob_reference,
        "add_orders": k.add_orders_reference,
        "requote_px": k.requote_px_reference,
        "recentre": k.recentre_reference,
        "pay_funding": k.pay_funding_reference,
        "snap_back": k.snap_back_reference,
    },
    positions: {
        "liq_px_kernel": k.liq_px_reference,
        "drop_ids": k.drop_ids_reference,
        "open_fields": k.open_fields_reference,
    },
}


@contextmanager
def numpy_path() -> Iterator[None]:
    """Run the simulator's numpy references instead of its kernels inside the block."""
    saved = {mod: {name: getattr(mod, name) for name in names} for mod, names in _SWAPS.items()}
    try:
        for mod, names in _SWAPS.items():
            for name, fn in names.items():
                setattr(mod, name, fn)
        yield
    finally:
        for mod, names in saved.items():
            for name, fn in names.items():
                setattr(mod, name, fn)
