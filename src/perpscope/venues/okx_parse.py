"""Parsers of OKX v5 market-data payloads (perpetual swaps) into store rows.

The only place where OKX's units, symbols and enums become perpscope's. Every OKX v5 answer is
an envelope ``{code, msg, data}`` with ``code`` ``"0"`` on success; :func:`data_list` checks it
and returns ``data``. Numbers arrive as decimal strings (times as ms strings); both strings and
JSON numbers are accepted. A payload that breaks its documented shape raises
:class:`~perpscope.errors.DataContractError` naming the endpoint and the field.

Wire formats (OKX v5 docs, "Public data", "Market data", "Trading statistics"):

- ``/api/v5/public/instruments?instType=SWAP``: ``{instId (BTC-USDT-SWAP), instType, uly,
  instFamily, settleCcy, ctVal, ctMult, ctValCcy, ctType (linear | inverse), listTime, tickSz,
  lotSz (contracts), state (live | suspend | preopen | test)}``; all swaps in one answer. A
  contract is ``ctVal x ctMult`` of ``ctValCcy``: base coin for linear swaps (BTC-USDT-SWAP:
  0.01 BTC), USD for inverse ones (BTC-USD-SWAP: 100 USD). The funding interval is not here.
- ``/api/v5/public/funding-rate-history``: ``{instId, fundingRate, realizedRate, fundingTime,
  method}``, newest first, about the last three months. ``realizedRate`` is the rate that was
  settled; the row carries neither the interval nor a mark price.
- ``/api/v5/public/funding-rate``: ``{instId, fundingRate (the accruing period's), fundingTime
  (its settlement), nextFundingTime, nextFundingRate ("" when not published), ts}``; with
  ``instId=ANY`` every swap. The interval is ``nextFundingTime - fundingTime``.
- ``/api/v5/public/open-interest?instType=SWAP``: ``{instId, oi (contracts), oiCcy (coin),
  oiUsd, ts}`` for every swap. One-sided.
- ``/api/v5/public/mark-price?instType=SWAP``: ``{instId, markPx, ts}``.
- ``/api/v5/market/history-candles``: ``[ts, o, h, l, c, vol (contracts), volCcy (base coin),
  volCcyQuote (quote), confirm]``; ``history-mark-price-candles`` and ``history-index-candles``:
  ``[ts, o, h, l, c, confirm]``. Newest first; ``confirm`` ``"0"`` marks the bar still open.
- ``/api/v5/rubik/stat/contracts/open-interest-history``: ``[ts, oi (contracts), oiCcy, oiUsd]``.
- ``/api/v5/rubik/stat/contracts/long-short-account-ratio-contract`` (and the ``-top-trader``
  account and position variants): ``[ts, ratio]``, the ratio alone (no shares).
- ``/api/v5/rubik/stat/taker-volume-contract``: ``[ts, sellVol, buyVol]`` (sell first), in the
  ``unit`` asked for (``0`` = coin).
- ``/api/v5/public/position-tiers``: ``{instFamily, tier, minSz, maxSz, mmr, imr, maxLever}``;
  the bounds of a swap's tiers are in **contracts**.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.venues._parse_common import INSTRUMENTS_SCHEMA, Wire, gap_interval_h

__all__ = [
    "CANDLE_ENDPOINTS",
    "PERIODS",
    "RATIO_ENDPOINTS",
    "TIMEFRAMES",
    "data_list",
    "inst_id",
    "parse_candles",
    "parse_funding_history",
    "parse_funding_rates",
    "parse_instruments",
    "parse_long_short",
    "parse_oi_history",
    "parse_oi_snapshot",
    "parse_position_tiers",
    "parse_taker_volume",
]

VENUE: Final = "okx"
CANDLE_ENDPOINTS: Final = {
    "trade": "api/v5/market/history-candles",
    "mark": "api/v5/market/history-mark-price-candles",
    "index": "api/v5/market/history-index-candles",
}
RATIO_ENDPOINTS: Final = {
    "global_account": "api/v5/rubik/stat/contracts/long-short-account-ratio-contract",
    "top_account": "api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader",
    "top_position": "api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader",
}
TIMEFRAMES: Final = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H",
    "4h": "4H", "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc",
}  # fmt: skip
"""perpscope timeframe -> OKX ``bar`` (6 h and longer: the UTC-aligned bars; OKX's plain ``6H``,
``1D`` ... open at Hong Kong time)."""
PERIODS: Final = {"5m": "5m", "1h": "1H"}
"""perpscope period -> OKX ``period`` of the trading statistics (``1D`` opens at Hong Kong
midnight, 16:00 UTC, off perpscope's UTC grid, so it is not offered)."""
_CT_TYPES: Final = ("linear", "inverse")
_INST_TYPES: Final = {"SWAP": InstrumentKind.PERP, "FUTURES": InstrumentKind.FUTURE}
_STATUS: Final = {"live": "trading", "suspend": "halted", "preopen": "pending", "test": "pending"}
_UTC_MS: Final = pl.Datetime("ms", "UTC")

_W: Final = Wire("okx", row="data[{}]")
_fail = _W.fail
_dicts = _W.dicts
_field = _W.field
_is_number = _W.is_number
_num = _W.num_exact
_ms = functools.partial(_W.ms_exact, digits_only=True)


def data_list(payload: Any, endpoint: str) -> list[Any]:
    """``data`` of an OKX v5 envelope whose ``code`` is ``"0"`` (a string or a number)."""
    if not isinstance(payload, dict) or "code" not in payload:
        shown = repr(payload)[:60]
        raise _fail(endpoint, f"expected a v5 envelope with 'code' and 'data', got {shown}")
    if str(payload.get("code")) != "0":
        raise _fail(endpoint, f"code {payload.get('code')!r}: {payload.get('msg')!r}")
    rows = payload.get("data")
    if not isinstance(rows, list):
        raise _fail(endpoint, "envelope has no 'data' array")
    return rows


def inst_id(instrument: Instrument) -> str:
    """OKX's swap id of a canonical perpetual (``BTC-USDT-PERP`` -> ``BTC-USDT-SWAP``)."""
    return f"{instrument.base}-{instrument.quote}-SWAP"


def _arrays(rows: Sequence[Any], width: int, endpoint: str) -> list[Sequence[Any]]:
    """Columns of array rows with at least ``width`` fields."""
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) < width:
            raise _fail(endpoint, f"data[{i}] is not an array of {width} fields")
    return list(zip(*rows, strict=False)) if rows else [[] for _ in range(width)]


# ---------------------------------------------------------------------------------- parsers


def parse_instruments(rows: Sequence[Any], read_ms: int) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``/api/v5/public/instruments`` rows into ``instruments`` rows.

    ``contract_size`` is ``ctVal x ctMult`` (base coin per linear contract, USD per inverse
    one); ``lot_size`` is ``lotSz`` in contracts; ``funding_interval_h`` is null (OKX states it
    in the funding-rate answer, not here). ``ctType`` and ``instType`` are closed enums (an
    unknown value raises). Swaps still in pre-opening that carry only ``instId`` and ``state``
    are skipped, as are symbols perpscope cannot name.

    Returns:
        The rows and the skipped venue symbols.
    """
    endpoint = "api/v5/public/instruments"
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    for i, s in enumerate(_dicts(rows, endpoint)):
        if "instId" not in s or "instType" not in s:
            raise _fail(endpoint, f"data[{i}] has no instId/instType")
        symbol, itype = str(s["instId"]), str(s["instType"])
        if itype not in _INST_TYPES:
            raise _fail(
                endpoint,
                f"data[{i}] ({symbol}) has unknown instType {itype!r}; known: SWAP, FUTURES",
            )
        family = str(s.get("instFamily") or s.get("uly") or "")
        ctype = str(s.get("ctType") or "")
        if not family or not ctype:  # a pre-opening swap announced by id only
            skipped.append(symbol)
            continue
        if ctype not in _CT_TYPES:
            raise _fail(
                endpoint,
                f"data[{i}] ({symbol}) has unknown ctType {ctype!r}; known: linear, inverse",
            )
        kind = _INST_TYPES[itype]
        exp = str(s.get("expTime") or "")
        expiry = datetime.fromtimestamp(int(exp) / 1000, UTC) if exp.isdigit() else None
        base, _, quote = family.partition("-")
        try:
            inst = Instrument(base, quote, kind, expiry=expiry.date() if expiry else None)
        except ValueError:
            skipped.append(symbol)
            continue
        ct_val, ct_mult = _num([s.get("ctVal"), s.get("ctMult") or "1"], "ctVal", endpoint)
        if ct_val is None or ct_mult is None or ct_val <= 0 or ct_mult <= 0:
            raise _fail(endpoint, f"data[{i}] ({symbol}) has no positive ctVal/ctMult")
        if (ctype == "inverse") != inst.is_inverse:
            raise _fail(endpoint, f"data[{i}] ({symbol}) is {ctype} but quoted in {quote}")
        tick, lot = _num([s.get("tickSz"), s.get("lotSz")], "tickSz", endpoint)
        state = str(s.get("state", ""))
        out.append(
            {
                "venue": VENUE,
                "instrument": str(inst),
                "ts": read_ts,
                "venue_symbol": symbol,
                "kind": kind.value,
                "base": base,
                "quote": quote,
                "settle": str(s.get("settleCcy") or ""),
                "contract_size": ct_val * ct_mult,
                "tick_size_px": tick,
                "lot_size": lot,
                "funding_interval_h": None,
                "expiry_ts": expiry,
                "status": _STATUS.get(state, state.lower()),
            }
        )
    return pl.DataFrame(out, schema=INSTRUMENTS_SCHEMA, orient="row"), tuple(skipped)


def parse_funding_history(
    rows: Sequence[Any], instrument: str, interval_h: float | None, prev_ts_ms: int | None = None
) -> pl.DataFrame:
    """Parse ``/api/v5/public/funding-rate-history`` rows into ``funding`` rows, oldest first.

    The rate stored is ``realizedRate``, the rate that was settled (``fundingRate`` when OKX
    sends no realised rate). A settlement's interval is the gap to the previous settlement when
    that is a funding interval (1, 2, 4 or 8 h); otherwise the nearest following row's, then the
    nearest preceding one's, then ``interval_h`` (the symbol's current interval; left null when
    ``None`` so the caller can fill it). Mark prices are not published here (null).
    """
    endpoint = "api/v5/public/funding-rate-history"
    rows = _dicts(rows, endpoint)
    realised = [r.get("realizedRate", "") for r in rows]
    stated = _field(rows, "fundingRate", endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "fundingTime", endpoint), "t", endpoint),
            _num(
                [a if a not in ("", None) else b for a, b in zip(realised, stated, strict=True)],
                "rate",
                endpoint,
            ),
        ]  # fmt: skip
    ).sort("t")
    if frame["rate"].null_count():
        raise _fail(endpoint, "a row has neither realizedRate nor fundingRate")
    interval = gap_interval_h(prev_ts_ms)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "rate",
        interval.backward_fill()
        .forward_fill()
        .fill_null(pl.lit(interval_h, pl.Float64))
        .alias("interval_h"),
        pl.lit(None, pl.Float64).alias("mark_px"),
    )


def parse_candles(
    rows: Sequence[Any], instrument: str, kind: str, timeframe_ms: int, timeframe: str, now_ms: int
) -> pl.DataFrame:
    """Parse OKX candles (newest first) into ``ohlcv`` rows, oldest first, closed bars only.

    A bar is dropped when ``confirm`` is ``"0"`` or it has not ended by ``now_ms``. Trade bars:
    ``volume`` is ``volCcy`` (base coin), ``quote_volume`` is ``volCcyQuote``; OKX publishes no
    taker-buy volume with them (null). Mark and index bars carry no volume (null).
    """
    endpoint = CANDLE_ENDPOINTS[kind]
    traded = kind == "trade"
    width = 9 if traded else 6
    cols = _arrays(rows, width, endpoint)
    series = [
        _ms(cols[0], "t", endpoint),
        _num(cols[1], "o", endpoint),
        _num(cols[2], "h", endpoint),
        _num(cols[3], "l", endpoint),
        _num(cols[4], "c", endpoint),
        pl.Series("confirm", [str(v) for v in cols[width - 1]], dtype=pl.String),
    ]
    if traded:
        series += [_num(cols[6], "volume", endpoint), _num(cols[7], "quote_volume", endpoint)]
    frame = pl.DataFrame(series)
    none = pl.lit(None, pl.Float64)
    return (
        frame.filter((pl.col("confirm") != "0") & (pl.col("t") + timeframe_ms <= now_ms))
        .sort("t")
        .select(
            pl.lit(VENUE).alias("venue"),
            pl.lit(instrument).alias("instrument"),
            pl.lit(kind).alias("kind"),
            pl.lit(timeframe).alias("timeframe"),
            pl.col("t").cast(_UTC_MS).alias("ts"),
            "o",
            "h",
            "l",
            "c",
            pl.col("volume") if traded else none.alias("volume"),
            pl.col("quote_volume") if traded else none.alias("quote_volume"),
            none.alias("taker_buy_volume"),
        )
    )


def parse_oi_history(rows: Sequence[Any], instrument: str, source: str) -> pl.DataFrame:
    """Parse ``rubik/stat/contracts/open-interest-history`` rows into ``open_interest`` rows.

    ``oi_value`` is the contract count (``oi_unit`` ``contracts``); OKX also states the coin
    amount and the USD value, kept as ``oi_base`` and ``oi_usd``.
    """
    endpoint = "api/v5/rubik/stat/contracts/open-interest-history"
    cols = _arrays(rows, 4, endpoint)
    frame = pl.DataFrame(
        [
            _ms(cols[0], "t", endpoint),
            _num(cols[1], "oi_value", endpoint),
            _num(cols[2], "oi_base", endpoint),
            _num(cols[3], "oi_usd", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(source).alias("source"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "oi_value",
        pl.lit("contracts").alias("oi_unit"),
        "oi_base",
        "oi_usd",
    )


def parse_long_short(rows: Sequence[Any], instrument: str, kind: str, period: str) -> pl.DataFrame:
    """Parse a rubik long/short ratio (``[ts, ratio]``) into ``long_short`` rows.

    OKX sends the ratio only; the shares follow from it: long = r / (1 + r), short = 1 / (1 + r).
    """
    endpoint = RATIO_ENDPOINTS[kind]
    cols = _arrays(rows, 2, endpoint)
    frame = pl.DataFrame([_ms(cols[0], "t", endpoint), _num(cols[1], "r", endpoint)])
    if (frame["r"] < 0).any():
        raise _fail(endpoint, "a negative long/short ratio")
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(kind).alias("kind"),
        pl.lit(period).alias("period"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        (pl.col("r") / (1 + pl.col("r"))).alias("long_frac"),
        (1 / (1 + pl.col("r"))).alias("short_frac"),
        pl.col("r").alias("long_short_ratio"),
    )


def parse_taker_volume(rows: Sequence[Any], instrument: str, period: str) -> pl.DataFrame:
    """Parse ``rubik/stat/taker-volume-contract`` rows (``[ts, sellVol, buyVol]``, asked in coin
    with ``unit=0``) into ``taker_volume`` rows."""
    endpoint = "api/v5/rubik/stat/taker-volume-contract"
    cols = _arrays(rows, 3, endpoint)
    frame = pl.DataFrame(
        [
            _ms(cols[0], "t", endpoint),
            _num(cols[1], "sell_volume_base", endpoint),
            _num(cols[2], "buy_volume_base", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(period).alias("period"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "buy_volume_base",
        "sell_volume_base",
        pl.when(pl.col("sell_volume_base") > 0)
        .then(pl.col("buy_volume_base") / pl.col("sell_volume_base"))
        .alias("buy_sell_ratio"),
    )


def parse_funding_rates(
    rows: Sequence[Any],
    to_canonical: Callable[[str], str | None],
    marks: Mapping[str, float],
    read_ms: int,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``/api/v5/public/funding-rate`` rows (``instId=ANY``: every swap) into
    ``funding_snapshot`` rows.

    ``rate`` is the accruing period's ``fundingRate``, settling at ``fundingTime``
    (``next_funding_ts``); ``predicted_rate`` is ``nextFundingRate`` when OKX publishes it;
    ``interval_h`` is ``nextFundingTime - fundingTime``. ``ts`` is the row's ``ts`` (``read_ms``
    when absent). ``mark_px`` comes from ``marks`` (``public/mark-price``) by instrument; OKX's
    funding answer has no index price (null).

    Returns:
        The rows and the venue symbols that could not be mapped.
    """
    endpoint = "api/v5/public/funding-rate"
    rows = _dicts(rows, endpoint)
    symbols = [str(s) for s in _field(rows, "instId", endpoint)]
    ids = [to_canonical(s) for s in symbols]
    unmapped = tuple(s for s, i in zip(symbols, ids, strict=True) if i is None)
    kept = [(r, i) for r, i in zip(rows, ids, strict=True) if i is not None]
    krows = [r for r, _ in kept]
    instruments = [i for _, i in kept]
    frame = pl.DataFrame(
        [
            pl.Series("instrument", instruments, dtype=pl.String),
            _num(_field(krows, "fundingRate", endpoint), "rate", endpoint),
            _num([r.get("nextFundingRate") for r in krows], "predicted_rate", endpoint),
            _ms(_field(krows, "fundingTime", endpoint), "fund_t", endpoint),
            _ms(_field(krows, "nextFundingTime", endpoint), "next_t", endpoint),
            _ms([r.get("ts") or read_ms for r in krows], "t", endpoint),
            pl.Series("mark_px", [marks.get(i) for i in instruments], dtype=pl.Float64),
        ]
    )
    hours = ((pl.col("next_t") - pl.col("fund_t")) / 3_600_000).round(6)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "rate",
        "predicted_rate",
        pl.when(hours > 0).then(hours).alias("interval_h"),
        pl.col("fund_t").cast(_UTC_MS).alias("next_funding_ts"),
        "mark_px",
        pl.lit(None, pl.Float64).alias("index_px"),
    ).sort("instrument"), unmapped


def parse_mark_prices(rows: Sequence[Any]) -> dict[str, float]:
    """``/api/v5/public/mark-price`` rows as ``{instId: markPx}``."""
    endpoint = "api/v5/public/mark-price"
    rows = _dicts(rows, endpoint)
    ids = [str(s) for s in _field(rows, "instId", endpoint)]
    pxs = _num(_field(rows, "markPx", endpoint), "markPx", endpoint)
    return {i: p for i, p in zip(ids, pxs, strict=True) if p is not None}


def parse_oi_snapshot(
    rows: Sequence[Any], to_canonical: Callable[[str], str | None], read_ms: int
) -> pl.DataFrame:
    """Parse ``/api/v5/public/open-interest?instType=SWAP`` rows into ``open_interest`` rows
    (source ``snapshot``): contracts as ``oi_value``, ``oiCcy`` as ``oi_base``, ``oiUsd`` as
    ``oi_usd``. Unmapped symbols are left out."""
    endpoint = "api/v5/public/open-interest"
    rows = _dicts(rows, endpoint)
    ids = [to_canonical(str(s)) for s in _field(rows, "instId", endpoint)]
    krows = [r for r, i in zip(rows, ids, strict=True) if i is not None]
    frame = pl.DataFrame(
        [
            pl.Series("instrument", [i for i in ids if i is not None], dtype=pl.String),
            _ms([r.get("ts") or read_ms for r in krows], "t", endpoint),
            _num(_field(krows, "oi", endpoint), "oi_value", endpoint),
            _num(_field(krows, "oiCcy", endpoint), "oi_base", endpoint),
            _num([r.get("oiUsd") for r in krows], "oi_usd", endpoint),
        ]
    )
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.lit("snapshot").alias("source"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "oi_value",
        pl.lit("contracts").alias("oi_unit"),
        "oi_base",
        "oi_usd",
    ).sort("instrument")


def parse_position_tiers(
    rows: Sequence[Any], instrument: str, read_ms: int, contract_size: float, inverse: bool
) -> pl.DataFrame:
    """Parse ``/api/v5/public/position-tiers`` (a swap family) into ``leverage_tiers`` rows.

    OKX states a swap tier's bounds ``minSz``/``maxSz`` in contracts. They are converted exactly
    where the contract size allows: an inverse contract is ``contract_size`` USD, so the bounds
    become USD (``bound_unit`` ``usd``); a linear contract is ``contract_size`` base coin, so
    the bounds become coin (``bound_unit`` ``base``; their USD value depends on the price).
    OKX tiers have no maintenance amount (``maint_amount_usd`` 0: MM = notional x mmr).
    """
    endpoint = "api/v5/public/position-tiers"
    rows = _dicts(rows, endpoint)
    tiers = _field(rows, "tier", endpoint)
    if not all(str(t).isdigit() for t in tiers):
        raise _fail(endpoint, f"field 'tier' holds a non-integer {tiers!r}")
    frame = pl.DataFrame(
        [
            pl.Series("tier", [int(str(t)) for t in tiers], dtype=pl.Int32),
            _num(_field(rows, "minSz", endpoint), "lo", endpoint),
            _num(_field(rows, "maxSz", endpoint), "hi", endpoint),
            _num(_field(rows, "mmr", endpoint), "mmr", endpoint),
            _num([r.get("maxLever") for r in rows], "max_leverage", endpoint),
        ]
    )
    if frame["mmr"].null_count() or ((frame["mmr"] < 0) | (frame["mmr"] > 1)).any():
        raise _fail(endpoint, "field 'mmr' must be a fraction in [0, 1]")
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    return frame.sort("tier").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(read_ts).cast(pl.Datetime("us", "UTC")).alias("ts"),
        "tier",
        (pl.col("lo") * contract_size).alias("notional_floor_usd"),
        (pl.col("hi") * contract_size).alias("notional_cap_usd"),
        "mmr",
        pl.lit(0.0).alias("maint_amount_usd"),
        "max_leverage",
        pl.lit("usd" if inverse else "base").alias("bound_unit"),
    )
