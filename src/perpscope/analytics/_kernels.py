"""Compiled kernels on plain arrays (numba), each with a pure polars reference it is tested against.

Only the path-dependent loops that a benchmark shows polars cannot do fast live here.

numba is imported and each kernel compiled on first use, not at import (importing numba costs
about a second); ``cache=True`` keeps the machine code on disk, so later processes only load it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perpscope._lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:  # numpy loads when a kernel runs (a command that only reads and prints never needs it)
    np = lazy_module("numpy")

__all__ = ["rolling_rank_count"]

prange = range  # numba's parallel range once the kernel is compiled (see _compiled_rank_count)


def _rank_count_py(
    ts: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    window: np.int64,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # pragma: no cover - compiled
    n = ts.shape[0]
    rank = np.full(n, np.nan)
    count = np.zeros(n)
    for k in prange(starts.shape[0]):  # series are independent: one per thread
        s = starts[k]
        e = starts[k + 1] if k + 1 < starts.shape[0] else n
        seg_vals = values[s:e][valid[s:e]]
        levels = np.unique(seg_vals)  # sorted distinct values of the series
        m = levels.shape[0]
        tree = np.zeros(m + 1, dtype=np.int32)  # Fenwick tree of counts per value level
        idx = np.zeros(e - s, dtype=np.int32)
        for i in range(s, e):
            if valid[i]:
                idx[i - s] = np.searchsorted(levels, values[i]) + 1
        left = s
        inside = 0
        for i in range(s, e):
            if valid[i]:
                j = idx[i - s]
                while j <= m:
                    tree[j] += 1
                    j += j & -j
                inside += 1
            while ts[left] <= ts[i] - window:
                if valid[left]:
                    j = idx[left - s]
                    while j <= m:
                        tree[j] -= 1
                        j += j & -j
                    inside -= 1
                left += 1
            count[i] = inside
            if valid[i]:
                j = idx[i - s]
                total = 0
                while j > 0:
                    total += tree[j]
                    j -= j & -j
                rank[i] = total
    return rank, count


@functools.cache
def _compiled_rank_count() -> Callable[..., Any]:
    """The numba-compiled kernel, built (or loaded from numba's disk cache) on first use."""
    global prange, np
    import numpy
    from numba import njit
    from numba import prange as numba_prange

    np = numpy  # numba types the kernel's globals: the module itself, not its stand-in
    prange = numba_prange  # the kernel's loop over series becomes parallel
    return njit(cache=True, nogil=True, parallel=True)(_rank_count_py)


def rolling_rank_count(
    ts_us: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    series_starts: npt.NDArray[np.int64],
    window_us: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per row: how many valid values of its series' window ``(t - w, t]`` are <= its own value.

    Args:
        ts_us: timestamps (any integer unit), ascending within each series.
        values: the values; rows where ``valid`` is false are ignored.
        valid: which rows hold a value.
        series_starts: the first row of each series (rows are grouped by series).
        window_us: the window length in the unit of ``ts_us``.

    Returns:
        ``(rank, count)``: the rank (NaN for invalid rows) with ties counted as <= ("max"
        method), and the number of valid values in the window. Same as polars'
        ``rolling_rank_by(method="max")`` and ``rolling_sum_by`` of validity over
        ``(t - w, t]``, in O(n log n) instead of O(n w).
    """
    rank, count = _compiled_rank_count()(
        np.ascontiguousarray(ts_us, dtype=np.int64),
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(valid, dtype=np.bool_),
        np.ascontiguousarray(series_starts, dtype=np.int64),
        np.int64(window_us),
    )
    return rank, count
