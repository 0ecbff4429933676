"""Every analytics command's tables at 80 columns on a demo store: nothing wider than the
terminal, one line per row (no number broken across lines), units on screen, SIMULATED shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from perpscope.cli._common import out_console
from perpscope.cli._render import MAX_TABLE_ROWS

ANALYTICS = [
    ("funding", "table"),
    ("funding", "history"),
    ("funding", "extremes"),
    ("funding", "arbitrage"),
    ("funding", "spread", "sim1", "sim2"),
    ("funding", "divergence"),
    ("oi", "summary"),
    ("oi", "divergence"),
    ("basis",),
    ("cvd",),
    ("longshort",),
]
_SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


@pytest.fixture
def width_80() -> Iterator[None]:
    """The terminal is 80 columns wide."""
    before = out_console.width
    out_console.width = 80
    yield
    out_console.width = before


def _rows(cli, store: Path, args: tuple[str, ...]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Rows per section, from the command's JSON."""
    data = cli("--store", str(store), *args, "--format", "json").json()
    if isinstance(data, list):
        return {"": len(data)}
    return {k: len(v) for k, v in data.items()}


@pytest.mark.usefixtures("width_80")
@pytest.mark.parametrize("args", ANALYTICS, ids=[" ".join(a) for a in ANALYTICS])
def test_tables_fit_80_columns_one_line_per_row(
    args: tuple[str, ...],
    demo_store: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    res = cli("--store", str(demo_store), *args)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not _SCIENTIFIC.search(res.out), "no scientific notation on screen"
    assert lines[0].lstrip().startswith("SIMULATED")
    # each section: a title, a header, a rule, its rows (one line each), at most two notes;
    # a row wrapped over two lines (a number broken in its cell) would exceed this count
    sections = _rows(cli, demo_store, args)
    allowed = 1 + sum(min(n, MAX_TABLE_ROWS) + (5 if n else 1) for n in sections.values())
    assert len(lines) <= allowed, res.out
    shown = sum(min(n, MAX_TABLE_ROWS) for n in sections.values())
    assert len(lines) >= shown  # every shown row is there


@pytest.mark.usefixtures("width_80")
def test_oi_summary_puts_asset_totals_above_venues(demo_store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    data = cli("--store", str(demo_store), "oi", "summary", "--format", "json").json()
    assets = {a["asset"]: a for a in data["assets"]}
    for asset, total in assets.items():
        venues = [v for v in data["venues"] if v["instrument"].startswith(f"{asset}-")]
        # by hand: the total is the sum; the change is the total now over the total 24h ago,
        # where each venue held oi / (1 + its change)
        now = sum(v["oi_usd"] for v in venues)
        before = sum(v["oi_usd"] / (1 + v["oi_change_24h"]) for v in venues)
        assert total["oi_usd"] == pytest.approx(now, abs=0.05)
        assert total["oi_change_24h"] == pytest.approx(now / before - 1, abs=1e-7)
        assert total["n_venues"] == len(venues)
    out = cli("--store", str(demo_store), "oi", "summary").out
    assert out.index("assets") < out.index("venues")
    assert "total OI" in out
    assert "$" in out
    assert "%" in out


@pytest.mark.usefixtures("width_80")
def test_wide_flag_anywhere_shows_every_column(demo_store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    narrow = cli("--store", str(demo_store), "oi", "summary").out
    wide = cli("--store", str(demo_store), "oi", "summary", "--wide").out
    assert "more columns with --wide" in narrow
    assert "more columns with --wide" not in wide
    assert "reading" in wide
    assert "HHI" in wide


@pytest.mark.parametrize("args", [(), ("funding",), ("oi",), ("calc",)])
def test_help_lists_whole_descriptions_within_80_columns(args: tuple[str, ...], cli) -> None:  # type: ignore[no-untyped-def]
    res = cli(*args, "--help")
    assert res.code == 0
    lines = res.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    described = [line for line in lines if not line.startswith("Usage:")]  # "[ARGS]..." is fine
    assert not any(line.rstrip().endswith("...") for line in described)  # nothing cut off
