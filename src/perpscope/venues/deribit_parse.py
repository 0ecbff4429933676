"""Parsers of Deribit API v2 market-data payloads into store rows.

The only place where Deribit's units, names and enums become perpscope's. Deribit speaks
JSON-RPC over HTTP GET: every answer is ``{jsonrpc: "2.0", result, usIn, usOut, usDiff,
testnet}`` (an error answer carries ``error: {code, message}`` instead; ccxt raises on those
before a parser sees them). :func:`result_of` checks the envelope and returns ``result``. Numbers
arrive as JSON numbers (the recorded ccxt fixtures hold some as strings: both are accepted). A
payload that breaks its documented shape raises :class:`~perpscope.errors.DataContractError`
naming the method and the field.

Wire formats and units (Deribit API v2 docs, "Market data"):

- ``public/get_instruments?currency=&kind=``: ``[{instrument_name, kind (future | option | spot
  | future_combo | option_combo), settlement_period (perpetual | day | week | month | quarter),
  base_currency, counter_currency, settlement_currency, instrument_type (reversed | linear),
  contract_size, tick_size, min_trade_amount, expiration_timestamp, creation_timestamp,
  is_active, strike, option_type (call | put)}]``. Inverse ("reversed") futures and perpetuals
  are traded in USD amounts in steps of ``contract_size`` USD (BTC-PERPETUAL 10 USD, ETH 1 USD);
  options are traded in coin (``contract_size`` 1). Canonical ids: ``BTC-PERPETUAL`` ->
  ``BTC-USD-PERP``; ``BTC_USDC-PERPETUAL`` -> ``BTC-USDC-PERP``; ``BTC-27MAR26`` ->
  ``BTC-USD-27MAR26``; ``BTC-27MAR26-100000-C`` -> ``BTC-USD-27MAR26-100000-C``. Combos and spot
  are skipped.
- ``public/get_funding_rate_history?instrument_name=&start_timestamp=&end_timestamp=``: hourly
  rows ``{timestamp, index_price, prev_index_price, interest_1h, interest_8h}``. Deribit's
  funding accrues continuously; ``interest_1h`` is the funding paid over the hour ending at
  ``timestamp`` and ``interest_8h`` the funding over the trailing eight hours (a rolling sum,
  so consecutive rows overlap). perpscope stores ``interest_1h`` with ``interval_h`` 1: summing
  rows gives the funding paid, and ``rate x 8 / interval_h`` is the 8 h equivalent every
  cross-venue table uses. (ccxt reads ``interest_8h`` as the row's "8h" rate: its hourly rows
  overlap eight times.) The rows carry no mark price (stored null).
- ``public/get_book_summary_by_currency?currency=&kind=future``: ``[{instrument_name,
  creation_timestamp, mark_price, estimated_delivery_price (the index), open_interest,
  current_funding, funding_8h, volume, volume_usd, ...}]``. Open interest of inverse futures
  and perpetuals is in USD (one side), of linear ones in coin. ``current_funding`` is the rate
  accruing now, quoted per 8 h; ``funding_8h`` the funding of the last 8 h.
- ``public/get_book_summary_by_currency?currency=&kind=option``: ``[{instrument_name,
  creation_timestamp, underlying_price, underlying_index, mark_price, bid_price, ask_price
  (in the coin for inverse options; 0 or null = no quote), mark_iv, bid_iv, ask_iv (percent; the
  quote IVs when the summary carries them), open_interest, volume (contracts of one coin),
  volume_usd, estimated_delivery_price, quote_currency}]``.
- ``public/get_last_trades_by_currency_and_time?currency=&kind=option&start_timestamp=
  &end_timestamp=&count=&sorting=asc``: ``{trades: [{trade_id, trade_seq, timestamp,
  instrument_name, direction (the taker's side), price, amount (coin), iv (percent),
  index_price, mark_price, block_trade_id (block trades only), liquidation (M | T | MT, only
  when a side was liquidated)}], has_more}``.
- ``public/get_tradingview_chart_data?instrument_name=&start_timestamp=&end_timestamp=
  &resolution=``: parallel arrays ``{ticks (bar open, ms), open, high, low, close, volume (coin),
  cost (USD for inverse instruments), status ("ok" | "no_data")}`` of trade prices, the bar still
  open included.
- ``public/get_volatility_index_data?currency=&start_timestamp=&end_timestamp=&resolution=``:
  ``{data: [[ts, open, high, low, close]], continuation}`` in DVOL points (55.3 = 55.3%
  annualised); stored as fractions like every implied volatility of the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final

import polars as pl

from perpscope.domain.symbols import (
    Instrument,
    InstrumentKind,
    OptionRight,
    format_expiry,
    parse_expiry,
)
from perpscope.venues._parse_common import INSTRUMENTS_SCHEMA, Wire
from perpscope.venues.units import normalise_oi

__all__ = [
    "CHART_RESOLUTIONS",
    "DVOL_RESOLUTIONS",
    "EXPIRY_TIME",
    "canonical_from_name",
    "parse_book_summary_futures",
    "parse_book_summary_options",
    "parse_chart",
    "parse_dvol",
    "parse_funding_history",
    "parse_instruments",
    "parse_option_trades",
    "result_of",
    "venue_symbol",
]

VENUE: Final = "deribit"
EXPIRY_TIME: Final = time(8, 0, tzinfo=UTC)
"""Deribit futures and options expire at 08:00 UTC."""
CHART_RESOLUTIONS: Final = {
    "1m": "1", "3m": "3", "5m": "5", "10m": "10", "15m": "15", "30m": "30", "1h": "60",
    "2h": "120", "3h": "180", "6h": "360", "12h": "720", "1d": "1D",
}  # fmt: skip
"""Candle lengths of ``get_tradingview_chart_data`` (perpscope timeframe -> ``resolution``)."""
DVOL_RESOLUTIONS: Final = {"1m": "60", "1h": "3600", "12h": "43200", "1d": "1D"}
"""Candle lengths of ``get_volatility_index_data`` (perpscope timeframe -> ``resolution``)."""
LIQUIDATION: Final = ("M", "T", "MT")

_UTC_MS: Final = pl.Datetime("ms", "UTC")
_UTC_US: Final = pl.Datetime("us", "UTC")
_NAME_RE: Final = re.compile(
    r"^(?P<base>[A-Z0-9]+)(?:_(?P<quote>[A-Z0-9]+))?-(?:(?P<perp>PERPETUAL)|"
    r"(?P<expiry>\d{1,2}[A-Z]{3}\d{2})(?:-(?P<strike>\d+(?:d\d+)?)-(?P<right>[CP]))?)$"
)
_STATUS: Final = {True: "trading", False: "halted"}

_W: Final = Wire("deribit")
_fail = _W.fail
_field = _W.field
_is_number = _W.is_number
_num = _W.num_exact
_ms = _W.ms_exact


def result_of(payload: Any, method: str) -> Any:
    """``result`` of a JSON-RPC answer of ``method`` (``public/get_instruments``)."""
    if not isinstance(payload, dict) or "result" not in payload:
        shown = repr(payload)[:60]
        raise _fail(method, f"expected a JSON-RPC answer with 'result', got {shown}")
    return payload["result"]


def _dicts(rows: Any, method: str) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise _fail(method, f"result is a {type(rows).__name__}, expected an array")
    return _W.dicts(rows, method)


def _float(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _positive(expr: pl.Expr) -> pl.Expr:
    """Deribit writes 0 (or nothing) for a missing quote: stored as null."""
    return pl.when(expr > 0).then(expr).otherwise(None)


# ---------------------------------------------------------------------------------- names


def venue_symbol(instrument: Instrument) -> str:
    """Deribit's name of a canonical perpetual, future or option (``BTC-USD-PERP`` ->
    ``BTC-PERPETUAL``, ``BTC-USDC-PERP`` -> ``BTC_USDC-PERPETUAL``)."""
    head = instrument.base if instrument.quote == "USD" else f"{instrument.base}_{instrument.quote}"
    if instrument.kind is InstrumentKind.PERP:
        return f"{head}-PERPETUAL"
    if instrument.expiry is None:
        raise ValueError(f"{instrument} is not a Deribit instrument")
    dated = f"{head}-{format_expiry(instrument.expiry)}"
    if instrument.kind is InstrumentKind.FUTURE:
        return dated
    assert instrument.strike is not None
    assert instrument.right is not None
    strike = f"{instrument.strike:f}"
    if "." in strike:
        strike = strike.rstrip("0").rstrip(".")
    return f"{dated}-{strike.replace('.', 'd')}-{instrument.right.value}"


def canonical_from_name(name: str) -> Instrument | None:
    """The canonical instrument of a Deribit name, or ``None`` (combos, spot, odd names).

    Without an ``_`` the instrument is inverse (quoted in USD, settled in the coin); with one
    (``BTC_USDC-...``) it is linear in the named currency.
    """
    m = _NAME_RE.match(name)
    if not m:
        return None
    base, quote = m["base"], m["quote"] or "USD"
    try:
        if m["perp"]:
            return Instrument(base, quote, InstrumentKind.PERP)
        expiry = parse_expiry(m["expiry"])
        if m["strike"] is None:
            return Instrument(base, quote, InstrumentKind.FUTURE, expiry=expiry)
        strike = Decimal(m["strike"].replace("d", "."))
        right = OptionRight(m["right"])
        return Instrument(base, quote, InstrumentKind.OPTION, expiry, strike, right)
    except ValueError:
        return None


def _expiry_ts(day: date) -> datetime:
    return datetime.combine(day, EXPIRY_TIME)


# ---------------------------------------------------------------------------------- parsers


def parse_instruments(
    payload: Any, read_ms: int, funding_interval_h: float = 8.0
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``public/get_instruments`` into ``instruments`` rows.

    ``contract_size`` is Deribit's: USD per contract for inverse futures and perpetuals, coin per
    contract for options and linear instruments; ``lot_size`` is ``min_trade_amount`` in
    contracts. Perpetuals get ``funding_interval_h`` (8: Deribit's rates are quoted per 8 h,
    though funding accrues continuously).

    Returns:
        The rows and the skipped names (combos, spot, names perpscope cannot read).
    """
    method = "public/get_instruments"
    rows = _dicts(result_of(payload, method), method)
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    for i, r in enumerate(rows):
        try:
            name, kind = str(r["instrument_name"]), str(r["kind"])
            size = r["contract_size"]
        except KeyError as exc:
            raise _fail(method, f"row {i} has no field {exc.args[0]!r}") from None
        inst = canonical_from_name(name) if kind in ("future", "option") else None
        if inst is None:
            skipped.append(name)
            continue
        if (kind == "option") != (inst.kind is InstrumentKind.OPTION):
            raise _fail(method, f"row {i} ({name}) has kind {kind!r} for a {inst.kind} name")
        if not _is_number(size) or float(size) <= 0:
            raise _fail(method, f"row {i} ({name}) has contract_size {size!r}")
        lot = r.get("min_trade_amount")
        tick = r.get("tick_size")
        out.append(
            {
                "venue": VENUE,
                "instrument": str(inst),
                "ts": read_ts,
                "venue_symbol": name,
                "kind": inst.kind.value,
                "base": inst.base,
                "quote": inst.quote,
                "settle": str(r.get("settlement_currency") or inst.base),
                "contract_size": float(size),
                "tick_size_px": _float(tick),
                "lot_size": (_float(lot) or 0.0) / float(size) if _is_number(lot) else None,
                "funding_interval_h": (
                    funding_interval_h if inst.kind is InstrumentKind.PERP else None
                ),
                "expiry_ts": _expiry_ts(inst.expiry) if inst.expiry else None,
                "status": _STATUS[bool(r.get("is_active", True))],
            }
        )
    frame = pl.DataFrame(out, schema=INSTRUMENTS_SCHEMA, orient="row")
    return frame, tuple(skipped)


def parse_funding_history(payload: Any, instrument: str) -> pl.DataFrame:
    """Parse ``public/get_funding_rate_history`` into hourly ``funding`` rows, oldest first.

    ``rate`` is ``interest_1h`` (the funding of the hour ending at ``ts``), ``interval_h`` 1;
    ``mark_px`` is null (the rows carry the index, not the mark). See the module docstring.
    """
    method = "public/get_funding_rate_history"
    rows = _dicts(result_of(payload, method), method)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", method), "t", method),
            _num(_field(rows, "interest_1h", method), "rate", method),
        ]
    )
    if frame["rate"].null_count():
        raise _fail(method, "a row has a null interest_1h")
    return (
        frame.unique("t", keep="last")
        .sort("t")
        .select(
            pl.lit(VENUE).alias("venue"),
            pl.lit(instrument).alias("instrument"),
            (pl.col("t") - pl.col("t") % 60_000).cast(_UTC_MS).alias("ts"),
            "rate",
            pl.lit(1.0).alias("interval_h"),
            pl.lit(None, pl.Float64).alias("mark_px"),
        )
    )


def parse_book_summary_futures(
    payload: Any, contract_size: Mapping[str, float] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """Parse ``get_book_summary_by_currency?kind=future``.

    Returns ``funding_snapshot`` rows of the perpetuals (``rate`` = ``current_funding``, the
    rate accruing now, per 8 h; no predicted rate and no next settlement: Deribit has none),
    ``open_interest`` snapshot rows of every future and perpetual (inverse: ``oi_value`` in USD,
    one side, ``oi_base`` = USD / mark; linear: coin, ``oi_usd`` = coin x mark), and the names
    that could not be mapped. Each row is stamped with its own ``creation_timestamp``.
    ``contract_size`` is not needed (Deribit states OI in USD or coin, not in contracts).
    """
    del contract_size
    method = "public/get_book_summary_by_currency"
    rows = _dicts(result_of(payload, method), method)
    names = [str(n) for n in _field(rows, "instrument_name", method)]
    insts = [canonical_from_name(n) for n in names]
    kept = [
        (r, i) for r, i in zip(rows, insts, strict=True)
        if i is not None and i.kind in (InstrumentKind.PERP, InstrumentKind.FUTURE)
    ]  # fmt: skip
    unmapped = tuple(n for n, i in zip(names, insts, strict=True) if i is None)
    krows = [r for r, _ in kept]
    base = pl.DataFrame(
        [
            pl.Series("instrument", [str(i) for _, i in kept], dtype=pl.String),
            pl.Series("perp", [i.kind is InstrumentKind.PERP for _, i in kept], dtype=pl.Boolean),
            pl.Series("inverse", [i.is_inverse for _, i in kept], dtype=pl.Boolean),
            _ms(_field(krows, "creation_timestamp", method), "t", method),
            _num(_field(krows, "mark_price", method), "mark_px", method),
            _num([r.get("estimated_delivery_price") for r in krows], "index_px", method),
            _num(_field(krows, "open_interest", method), "oi_value", method),
            _num([r.get("current_funding") for r in krows], "rate", method),
        ]
    ).with_columns(pl.col("t").cast(_UTC_MS).alias("ts"))
    funding = (
        base.filter(pl.col("perp"))
        .select(
            pl.lit(VENUE).alias("venue"),
            "instrument",
            "ts",
            "rate",
            pl.lit(None, pl.Float64).alias("predicted_rate"),
            pl.lit(8.0).alias("interval_h"),
            pl.lit(None, _UTC_MS).alias("next_funding_ts"),
            _positive(pl.col("mark_px")).alias("mark_px"),
            _positive(pl.col("index_px")).alias("index_px"),
        )
        .sort("instrument")
    )
    oi = normalise_oi(
        base.with_columns(
            pl.when(pl.col("inverse"))
            .then(pl.lit("usd"))
            .otherwise(pl.lit("base"))
            .alias("oi_unit"),
            pl.col("mark_px").alias("px"),
        )
    ).select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.lit("snapshot").alias("source"),
        "ts",
        "oi_value",
        "oi_unit",
        "oi_base",
        "oi_usd",
    )
    return funding, oi.sort("instrument"), unmapped


def parse_book_summary_options(payload: Any) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``get_book_summary_by_currency?kind=option`` into ``options_snapshot`` rows.

    ``ts`` is the snapshot's time (its newest ``creation_timestamp``), ``quote_ts`` each row's
    own. Prices stay in ``price_currency`` (the coin for inverse options); IVs become fractions;
    a zero bid, ask or IV (no quote) is null. The venue sends no greeks here (null).

    Returns:
        The rows and the names that are not options perpscope can name.
    """
    method = "public/get_book_summary_by_currency"
    rows = _dicts(result_of(payload, method), method)
    names = [str(n) for n in _field(rows, "instrument_name", method)]
    insts = [canonical_from_name(n) for n in names]
    kept = [
        (r, i) for r, i in zip(rows, insts, strict=True)
        if i is not None and i.kind is InstrumentKind.OPTION
    ]  # fmt: skip
    unmapped = tuple(
        n
        for n, i in zip(names, insts, strict=True)
        if i is None or i.kind is not InstrumentKind.OPTION
    )
    krows = [r for r, _ in kept]
    ins = [i for _, i in kept]

    def opt(key: str) -> list[Any]:
        return [r.get(key) for r in krows]

    frame = pl.DataFrame(
        [
            pl.Series("instrument", [str(i) for i in ins], dtype=pl.String),
            pl.Series("underlying", [i.base for i in ins], dtype=pl.String),
            pl.Series("expiry_ts", [_expiry_ts(i.expiry) for i in ins if i.expiry], dtype=_UTC_US),
            pl.Series("strike_px", [float(i.strike or 0) for i in ins], dtype=pl.Float64),
            pl.Series("option_type", [i.right.value if i.right else "" for i in ins], pl.String),
            pl.Series(
                "price_currency",
                [
                    str(r.get("quote_currency") or i.base) if i.is_inverse else i.quote
                    for r, i in kept
                ],
                dtype=pl.String,
            ),  # fmt: skip
            _ms(_field(krows, "creation_timestamp", method), "t", method),
            _num(_field(krows, "open_interest", method), "open_interest_contracts", method),
            _num(opt("volume"), "volume_contracts", method),
            _num(opt("volume_usd"), "volume_usd", method),
            _num(_field(krows, "mark_price", method), "mark_price", method),
            _num(opt("bid_price"), "bid_price", method),
            _num(opt("ask_price"), "ask_price", method),
            _num(opt("mark_iv"), "mark_iv", method),
            _num(opt("bid_iv"), "bid_iv", method),
            _num(opt("ask_iv"), "ask_iv", method),
            _num(_field(krows, "underlying_price", method), "underlying_px", method),
            _num(opt("estimated_delivery_price"), "index_px", method),
        ]
    )
    snap = frame["t"].max() if frame.height else None
    none = pl.lit(None, pl.Float64)
    out = frame.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.lit(snap, pl.Int64).cast(_UTC_MS).alias("ts"),
        pl.col("t").cast(_UTC_MS).alias("quote_ts"),
        "underlying",
        "expiry_ts",
        "strike_px",
        "option_type",
        pl.lit(1.0).alias("contract_size_base"),
        "open_interest_contracts",
        "volume_contracts",
        "volume_usd",
        "mark_price",
        "price_currency",
        _positive(pl.col("bid_price")).alias("bid_price"),
        _positive(pl.col("ask_price")).alias("ask_price"),
        *[(_positive(pl.col(c)) / 100.0).alias(c) for c in ("mark_iv", "bid_iv", "ask_iv")],
        _positive(pl.col("underlying_px")).alias("underlying_px"),
        _positive(pl.col("index_px")).alias("index_px"),
        none.alias("delta"),
        none.alias("gamma"),
        none.alias("vega"),
        none.alias("theta"),
    )
    return out.sort("instrument"), unmapped


def parse_option_trades(result: Any) -> tuple[pl.DataFrame, bool]:
    """Parse the ``result`` of ``get_last_trades_by_currency(_and_time)`` into ``option_trades``.

    ``qty_contracts`` is ``amount`` (contracts of one coin); ``notional_usd`` = amount x
    ``index_price``; ``iv`` a fraction; ``block`` is whether the trade has a ``block_trade_id``;
    ``liquidation`` is Deribit's ``M`` / ``T`` / ``MT`` (which side was liquidated) or null.
    Trades of instruments that are not options perpscope can name are left out.

    Returns:
        The rows (oldest first) and Deribit's ``has_more``.
    """
    method = "public/get_last_trades_by_currency_and_time"
    if not isinstance(result, dict) or not isinstance(result.get("trades"), list):
        raise _fail(method, "result has no 'trades' array")
    rows = _dicts(result["trades"], method)
    insts = [canonical_from_name(str(n)) for n in _field(rows, "instrument_name", method)]
    kept = [
        (r, i) for r, i in zip(rows, insts, strict=True)
        if i is not None and i.kind is InstrumentKind.OPTION
    ]  # fmt: skip
    krows = [r for r, _ in kept]
    liq = [r.get("liquidation") for r in krows]
    bad = next((v for v in liq if v is not None and v not in LIQUIDATION), None)
    if bad is not None:
        raise _fail(method, f"unknown liquidation {bad!r}; known: {', '.join(LIQUIDATION)}")
    sides = [str(s) for s in _field(krows, "direction", method)]
    if any(s not in ("buy", "sell") for s in sides):
        raise _fail(method, f"unknown direction in {sorted(set(sides))}")
    frame = pl.DataFrame(
        [
            pl.Series("instrument", [str(i) for _, i in kept], dtype=pl.String),
            _ms(_field(krows, "timestamp", method), "t", method),
            pl.Series("trade_id", [str(t) for t in _field(krows, "trade_id", method)], pl.String),
            pl.Series("side", sides, dtype=pl.String),
            _num(_field(krows, "price", method), "price", method),
            pl.Series(
                "price_currency", [i.base if i.is_inverse else i.quote for _, i in kept], pl.String
            ),
            _num(_field(krows, "amount", method), "qty_contracts", method),
            _num([r.get("iv") for r in krows], "iv", method),
            _num([r.get("index_price") for r in krows], "index_px", method),
            pl.Series("block", [r.get("block_trade_id") is not None for r in krows], pl.Boolean),
            pl.Series("liquidation", liq, dtype=pl.String),
        ]
    )
    out = frame.sort("t", "trade_id").select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "trade_id",
        "side",
        "price",
        "price_currency",
        "qty_contracts",
        (pl.col("qty_contracts") * pl.col("index_px")).alias("notional_usd"),
        (_positive(pl.col("iv")) / 100.0).alias("iv"),
        "index_px",
        "block",
        "liquidation",
    )
    return out, bool(result.get("has_more", False))


def parse_dvol(result: Any, underlying: str, timeframe: str) -> tuple[pl.DataFrame, int | None]:
    """Parse the ``result`` of ``get_volatility_index_data`` into ``vol_index`` rows (DVOL).

    Returns:
        The candles (oldest first, as fractions) and ``continuation`` (the ``end_timestamp`` of
        the next, older page; ``None`` when there is none).
    """
    method = "public/get_volatility_index_data"
    if not isinstance(result, dict) or not isinstance(result.get("data"), list):
        raise _fail(method, "result has no 'data' array")
    data = result["data"]
    for i, c in enumerate(data):
        if not isinstance(c, list) or len(c) < 5:
            raise _fail(method, f"data[{i}] is not [ts, open, high, low, close]")
    cols: list[Sequence[Any]] = list(zip(*data, strict=False)) if data else [[]] * 5
    frame = pl.DataFrame(
        [
            _ms(cols[0], "t", method),
            *[_num(cols[k], n, method) / 100.0 for k, n in enumerate("ohlc", start=1)],
        ]
    )
    out = (
        frame.unique("t", keep="last")
        .sort("t")
        .select(
            pl.lit(VENUE).alias("venue"),
            pl.lit(underlying).alias("underlying"),
            pl.lit("dvol").alias("index_name"),
            pl.lit(timeframe).alias("timeframe"),
            pl.col("t").cast(_UTC_MS).alias("ts"),
            "o",
            "h",
            "l",
            "c",
        )
    )
    cont = result.get("continuation")
    value = _float(cont)
    return out, int(value) if value is not None else None


def parse_chart(
    result: Any, instrument: str, timeframe: str, timeframe_ms: int, now_ms: int
) -> pl.DataFrame:
    """Parse the ``result`` of ``get_tradingview_chart_data`` into ``ohlcv`` rows (trade prices),
    oldest first, without the bar still open at ``now_ms``.

    ``volume`` is in coin (base), ``quote_volume`` is ``cost``; Deribit publishes no taker-buy
    volume (null). ``status`` ``no_data`` is an empty answer.
    """
    method = "public/get_tradingview_chart_data"
    if not isinstance(result, dict):
        raise _fail(method, f"result is a {type(result).__name__}, expected an object")
    if result.get("status") == "no_data":
        result = {k: [] for k in ("ticks", "open", "high", "low", "close", "volume", "cost")}
    arrays: dict[str, list[Any]] = {}
    for key in ("ticks", "open", "high", "low", "close"):
        if not isinstance(result.get(key), list):
            raise _fail(method, f"result has no {key!r} array")
        arrays[key] = result[key]
    n = len(arrays["ticks"])
    for key in ("volume", "cost"):
        value = result.get(key)
        arrays[key] = value if isinstance(value, list) else [None] * n
    bad = [k for k, v in arrays.items() if len(v) != n]
    if bad:
        raise _fail(method, f"arrays {', '.join(bad)} are not as long as 'ticks' ({n})")
    frame = pl.DataFrame(
        [
            _ms(arrays["ticks"], "t", method),
            _num(arrays["open"], "o", method),
            _num(arrays["high"], "h", method),
            _num(arrays["low"], "l", method),
            _num(arrays["close"], "c", method),
            _num(arrays["volume"], "volume", method),
            _num(arrays["cost"], "quote_volume", method),
        ]
    )
    return (
        frame.filter(pl.col("t") + timeframe_ms <= now_ms)
        .unique("t", keep="last")
        .sort("t")
        .select(
            pl.lit(VENUE).alias("venue"),
            pl.lit(instrument).alias("instrument"),
            pl.lit("trade").alias("kind"),
            pl.lit(timeframe).alias("timeframe"),
            pl.col("t").cast(_UTC_MS).alias("ts"),
            "o",
            "h",
            "l",
            "c",
            "volume",
            "quote_volume",
            pl.lit(None, pl.Float64).alias("taker_buy_volume"),
        )
    )
