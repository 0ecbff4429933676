"""Parsers of Bybit v5 market-data payloads (linear category) into store rows.

The only place where Bybit's units, symbols and enums become perpscope's. Every Bybit v5 answer
is an envelope ``{retCode, retMsg, result: {category, list, nextPageCursor?}, time}``;
:func:`result_list` checks it and returns ``result.list``. Numbers arrive as decimal strings
(and times as ms strings or numbers: both are accepted). A payload that breaks its documented
shape raises :class:`~perpscope.errors.DataContractError` naming the endpoint and the field.

Wire formats (Bybit v5 docs, "Market"):

- ``/v5/market/instruments-info``: ``{symbol, contractType (LinearPerpetual | LinearFutures |
  InversePerpetual | InverseFutures), status, baseCoin, quoteCoin, settleCoin, deliveryTime,
  fundingInterval (minutes), priceFilter.tickSize, lotSizeFilter.qtyStep}``; cursor paginated.
- ``/v5/market/funding/history``: ``{symbol, fundingRate, fundingRateTimestamp}``, newest first.
  The interval of a settlement is not in the row: it is the instrument's ``fundingInterval``.
- ``/v5/market/tickers``: every symbol's ``fundingRate`` (the accruing period's rate),
  ``nextFundingTime``, ``openInterest`` (base coin for linear), ``openInterestValue`` (USD),
  ``markPrice``, ``indexPrice``; no per-row time (the envelope's ``time`` is the read time).
- ``/v5/market/kline``: ``[start, o, h, l, c, volume (base), turnover (quote)]``; the
  ``mark-price-kline``, ``index-price-kline`` and ``premium-index-price-kline`` rows are
  ``[start, o, h, l, c]``. Newest first; the bar still open is included.
- ``/v5/market/open-interest``: ``{openInterest, timestamp}``, newest first; base coin for linear
  contracts, USD for inverse ones; cursor paginated.
- ``/v5/market/account-ratio``: ``{symbol, buyRatio, sellRatio, timestamp}``, newest first: the
  shares of accounts holding a net long / short position.
- ``/v5/market/risk-limit``: ``{id, symbol, riskLimitValue, maintenanceMargin, initialMargin,
  isLowestRisk, maxLeverage, mmDeduction}``, one row per risk-limit tier; cursor paginated.
- ``/v5/market/insurance``: ``result = {updateTime, list: [{coin, symbols, balance, value}]}``,
  one row per insurance *pool*: ``symbols`` lists the contracts sharing the pool
  (``"BTCUSDT,ETHUSDT,SOLUSDT"``; one symbol for an isolated pool), ``balance`` is in ``coin``,
  ``value`` its USD value. Isolated pools are refreshed every minute, shared ones every 24 hours;
  the one ``updateTime`` (ms) dates the answer. No ``category``, no cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.venues._parse_common import INSTRUMENTS_SCHEMA, Wire, gap_interval_h

__all__ = [
    "KLINE_ENDPOINTS",
    "PERIODS",
    "TIMEFRAMES",
    "parse_account_ratio",
    "parse_funding_history",
    "parse_instruments",
    "parse_insurance",
    "parse_klines",
    "parse_open_interest",
    "parse_risk_limits",
    "parse_tickers",
    "result_list",
    "venue_symbol",
]

VENUE: Final = "bybit"
KLINE_ENDPOINTS: Final = {
    "trade": "v5/market/kline",
    "mark": "v5/market/mark-price-kline",
    "index": "v5/market/index-price-kline",
    "premium": "v5/market/premium-index-price-kline",
}
TIMEFRAMES: Final = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
    "4h": "240", "6h": "360", "12h": "720", "1d": "D", "1w": "W",
}  # fmt: skip
"""perpscope timeframe -> Bybit ``interval``."""
PERIODS: Final = {
    "5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d",
}  # fmt: skip
"""perpscope period -> Bybit ``intervalTime`` / ``period`` of OI and account-ratio history."""
_CONTRACT_TYPES: Final = {
    "LinearPerpetual": (InstrumentKind.PERP, False),
    "LinearFutures": (InstrumentKind.FUTURE, False),
    "InversePerpetual": (InstrumentKind.PERP, True),
    "InverseFutures": (InstrumentKind.FUTURE, True),
}
_STATUS: Final = {
    "Trading": "trading",
    "PreLaunch": "pending",
    "Settling": "halted",
    "Delivering": "halted",
    "Closed": "delisted",
}
_UTC_MS: Final = pl.Datetime("ms", "UTC")

_W: Final = Wire(VENUE, bools_are_numbers=True)
_fail = _W.fail
_dicts = _W.dicts
_field = _W.field
_is_number = _W.is_number
_num = _W.num_cast  # "" is null
_ms = _W.ms_cast  # a null time is a violation


def result_list(payload: Any, endpoint: str) -> list[dict[str, Any]] | list[list[Any]]:
    """``result.list`` of a Bybit v5 envelope with ``retCode`` 0 (as a number or a string)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), dict):
        shown = repr(payload)[:60]
        raise _fail(endpoint, f"expected a v5 envelope with a 'result' object, got {shown}")
    if str(payload.get("retCode")) != "0":
        raise _fail(endpoint, f"retCode {payload.get('retCode')!r}: {payload.get('retMsg')!r}")
    rows = payload["result"].get("list")
    if not isinstance(rows, list):
        raise _fail(endpoint, "result has no 'list' array")
    return rows


def _float(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def venue_symbol(instrument: Instrument) -> str:
    """Bybit's linear perpetual symbol of a canonical instrument (``BTC-USDT-PERP`` -> ``BTCUSDT``;
    USDC perpetuals are spelled ``BTCPERP``)."""
    if instrument.quote == "USDC":
        return f"{instrument.base}PERP"
    return f"{instrument.base}{instrument.quote}"


# ---------------------------------------------------------------------------------- parsers


def parse_instruments(
    rows: Sequence[Any], read_ms: int, default_interval_h: float = 8.0
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``/v5/market/instruments-info`` rows into ``instruments`` rows.

    ``contractType`` is a closed enum (an unknown value raises); ``fundingInterval`` is in
    minutes (perpetuals only). Unknown statuses are stored lower-cased.

    Returns:
        The rows and the skipped venue symbols (those perpscope cannot name).
    """
    endpoint = "v5/market/instruments-info"
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    for i, s in enumerate(_dicts(rows, endpoint)):
        try:
            symbol, ctype, status = s["symbol"], s["contractType"], s["status"]
            base, quote, settle = s["baseCoin"], s["quoteCoin"], s["settleCoin"]
        except KeyError as exc:
            raise _fail(endpoint, f"list[{i}] has no field {exc.args[0]!r}") from None
        if ctype not in _CONTRACT_TYPES:
            raise _fail(
                endpoint,
                f"list[{i}] ({symbol}) has unknown contractType {ctype!r}; known: "
                f"{', '.join(_CONTRACT_TYPES)}",
            )
        kind, _inverse = _CONTRACT_TYPES[ctype]
        delivery = int(s.get("deliveryTime") or 0)
        expiry = (
            datetime.fromtimestamp(delivery / 1000, UTC)
            if kind is InstrumentKind.FUTURE and delivery
            else None
        )
        try:
            inst = Instrument(base, quote, kind, expiry=expiry.date() if expiry else None)
        except ValueError:
            skipped.append(symbol)
            continue
        perp = kind is InstrumentKind.PERP
        minutes = _float(s.get("fundingInterval"))
        interval = (minutes / 60 if minutes else default_interval_h) if perp else None
        price_filter = s.get("priceFilter") or {}
        lot_filter = s.get("lotSizeFilter") or {}
        tick = price_filter.get("tickSize")
        step = lot_filter.get("qtyStep")
        out.append(
            {
                "venue": VENUE,
                "instrument": str(inst),
                "ts": read_ts,
                "venue_symbol": symbol,
                "kind": kind.value,
                "base": base,
                "quote": quote,
                "settle": settle,
                # linear: one contract is one coin; inverse: one contract is one USD
                "contract_size": 1.0,
                "tick_size_px": _float(tick),
                "lot_size": _float(step),
                "funding_interval_h": interval,
                "expiry_ts": expiry,
                "status": _STATUS.get(str(status), str(status).lower()),
            }
        )
    return pl.DataFrame(out, schema=INSTRUMENTS_SCHEMA, orient="row"), tuple(skipped)


def parse_funding_history(
    rows: Sequence[Any], instrument: str, interval_h: float, prev_ts_ms: int | None = None
) -> pl.DataFrame:
    """Parse ``/v5/market/funding/history`` rows into ``funding`` rows, oldest first.

    Bybit's rows carry no mark price (stored null) and no interval. A settlement's interval is
    the time since the previous settlement when that gap is a funding interval (1, 2, 4 or 8 h);
    otherwise (the first row, a hole) the nearest following row's, then the nearest preceding
    one's, then ``interval_h``, the instrument's current ``fundingInterval``. So a symbol whose
    interval changed keeps the old interval on its old rows.
    """
    endpoint = "v5/market/funding/history"
    rows = _dicts(rows, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "fundingRateTimestamp", endpoint), "t", endpoint),
            _num(_field(rows, "fundingRate", endpoint), "rate", endpoint),
        ]
    ).sort("t")
    interval = gap_interval_h(prev_ts_ms)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "rate",
        interval.backward_fill().forward_fill().fill_null(interval_h).alias("interval_h"),
        pl.lit(None, pl.Float64).alias("mark_px"),
    )


def parse_klines(
    rows: Sequence[Any], instrument: str, kind: str, timeframe_ms: int, timeframe: str, now_ms: int
) -> pl.DataFrame:
    """Parse a kline response into ``ohlcv`` rows, oldest first, without the bar still open.

    Trade klines carry ``volume`` (base) and ``turnover`` (quote); Bybit publishes no taker-buy
    volume (null). Mark, index and premium klines carry no volume (null).
    """
    endpoint = KLINE_ENDPOINTS[kind]
    width = 7 if kind == "trade" else 5
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) < width:
            raise _fail(endpoint, f"row {i} is not an array of {width} fields")
    cols: list[Sequence[Any]] = list(zip(*rows, strict=False)) if rows else [[]] * width
    series = [
        _ms(cols[0], "t", endpoint),
        _num(cols[1], "o", endpoint),
        _num(cols[2], "h", endpoint),
        _num(cols[3], "l", endpoint),
        _num(cols[4], "c", endpoint),
    ]
    if kind == "trade":
        series += [_num(cols[5], "volume", endpoint), _num(cols[6], "quote_volume", endpoint)]
    frame = pl.DataFrame(series)
    traded = kind == "trade"
    return (
        frame.filter(pl.col("t") + timeframe_ms <= now_ms)
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
            pl.col("volume") if traded else pl.lit(None, pl.Float64).alias("volume"),
            pl.col("quote_volume") if traded else pl.lit(None, pl.Float64).alias("quote_volume"),
            pl.lit(None, pl.Float64).alias("taker_buy_volume"),
        )
    )


def parse_open_interest(
    rows: Sequence[Any], instrument: str, source: str, *, inverse: bool = False
) -> pl.DataFrame:
    """Parse ``/v5/market/open-interest`` rows into ``open_interest`` rows, oldest first.

    Linear OI is in base coin (``oi_base`` = value; USD left null: the history carries no
    price). Inverse OI is in USD (``oi_usd`` = value; base left null).
    """
    endpoint = "v5/market/open-interest"
    rows = _dicts(rows, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", endpoint), "t", endpoint),
            _num(_field(rows, "openInterest", endpoint), "oi_value", endpoint),
        ]
    )
    none = pl.lit(None, pl.Float64)
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(source).alias("source"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "oi_value",
        pl.lit("usd" if inverse else "base").alias("oi_unit"),
        (none if inverse else pl.col("oi_value")).alias("oi_base"),
        (pl.col("oi_value") if inverse else none).alias("oi_usd"),
    )


def parse_account_ratio(rows: Sequence[Any], instrument: str, period: str) -> pl.DataFrame:
    """Parse ``/v5/market/account-ratio`` rows into ``long_short`` rows (``global_account``)."""
    endpoint = "v5/market/account-ratio"
    rows = _dicts(rows, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", endpoint), "t", endpoint),
            _num(_field(rows, "buyRatio", endpoint), "long_frac", endpoint),
            _num(_field(rows, "sellRatio", endpoint), "short_frac", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit("global_account").alias("kind"),
        pl.lit(period).alias("period"),
        pl.col("t").cast(_UTC_MS).alias("ts"),
        "long_frac",
        "short_frac",
        (pl.col("long_frac") / pl.col("short_frac")).alias("long_short_ratio"),
    )


def parse_tickers(
    payload: Any,
    to_canonical: Callable[[str], str | None],
    interval_h: Mapping[str, float],
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """Parse the all-symbol ``/v5/market/tickers?category=linear`` answer.

    Returns ``funding_snapshot`` rows (``fundingRate`` is the accruing period's rate; Bybit
    publishes no separate prediction), ``open_interest`` snapshot rows (``openInterest`` in base
    coin, ``openInterestValue`` in USD), and the symbols that could not be mapped. Every row is
    stamped with the envelope's ``time`` (the tickers carry none of their own). Dated futures
    (``nextFundingTime`` 0, no funding rate) get a null rate and next-funding time.
    """
    endpoint = "v5/market/tickers"
    rows = _dicts(result_list(payload, endpoint), endpoint)
    if "time" not in payload:
        raise _fail(endpoint, "envelope has no 'time'")
    read_ms = int(str(payload["time"]))
    symbols = _field(rows, "symbol", endpoint)
    ids = [to_canonical(s) for s in symbols]
    unmapped = tuple(s for s, i in zip(symbols, ids, strict=True) if i is None)
    kept = [(r, i) for r, i in zip(rows, ids, strict=True) if i is not None]
    krows = [r for r, _ in kept]
    base = pl.DataFrame(
        [
            pl.Series("instrument", [i for _, i in kept], dtype=pl.String),
            _num([r.get("fundingRate") for r in krows], "rate", endpoint),
            _ms([r.get("nextFundingTime") or 0 for r in krows], "next_t", endpoint),
            _num(_field(krows, "markPrice", endpoint), "mark_px", endpoint),
            _num(_field(krows, "indexPrice", endpoint), "index_px", endpoint),
            _num(_field(krows, "openInterest", endpoint), "oi_base", endpoint),
            _num(_field(krows, "openInterestValue", endpoint), "oi_usd", endpoint),
        ]
    ).with_columns(pl.lit(read_ms).cast(_UTC_MS).alias("ts"))
    funding = base.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        "ts",
        "rate",
        pl.lit(None, pl.Float64).alias("predicted_rate"),
        pl.col("instrument")
        .replace_strict(interval_h, default=None, return_dtype=pl.Float64)
        .alias("interval_h"),
        pl.when(pl.col("next_t") > 0).then(pl.col("next_t")).cast(_UTC_MS).alias("next_funding_ts"),
        "mark_px",
        "index_px",
    ).sort("instrument")
    oi = base.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        pl.lit("snapshot").alias("source"),
        "ts",
        pl.col("oi_base").alias("oi_value"),
        pl.lit("base").alias("oi_unit"),
        "oi_base",
        "oi_usd",
    ).sort("instrument")
    return funding, oi, unmapped


def parse_risk_limits(
    rows: Sequence[Any], instrument: str, symbol: str, read_ms: int
) -> pl.DataFrame:
    """Parse ``/v5/market/risk-limit`` (one linear symbol) into ``leverage_tiers`` rows.

    A Bybit risk-limit row ``{id, symbol, riskLimitValue, maintenanceMargin, initialMargin,
    maxLeverage, mmDeduction}`` is one tier: ``riskLimitValue`` is its position-value cap in
    USDT, ``maintenanceMargin`` and ``initialMargin`` are rates (fractions), ``mmDeduction``
    the maintenance amount subtracted from value x rate (``""`` = 0). Tiers are ordered by cap
    and numbered from 1; a tier's floor is the previous tier's cap (0 for the first); its
    largest leverage is 1 / ``initialMargin``. Bounds are USDT value (``bound_unit`` ``usd``).
    """
    endpoint = "v5/market/risk-limit"
    rows = [r for r in _dicts(rows, endpoint) if r.get("symbol") == symbol]
    if not rows:
        raise _fail(endpoint, f"no tier of {symbol}")
    frame = pl.DataFrame(
        [
            _num(_field(rows, "riskLimitValue", endpoint), "cap", endpoint),
            _num(_field(rows, "maintenanceMargin", endpoint), "mmr", endpoint),
            _num(_field(rows, "initialMargin", endpoint), "imr", endpoint),
            _num([r.get("mmDeduction") for r in rows], "maint", endpoint).fill_null(0.0),
        ]
    ).sort("cap")
    if frame["cap"].null_count() or (frame["cap"] <= 0).any():
        raise _fail(endpoint, "field 'riskLimitValue' must be a positive USDT value")
    if frame["cap"].n_unique() != frame.height:
        raise _fail(endpoint, "two tiers share one 'riskLimitValue'")
    mmr, imr = frame["mmr"], frame["imr"]
    if mmr.null_count() or ((mmr < 0) | (mmr > 1)).any():
        raise _fail(endpoint, "field 'maintenanceMargin' must be a fraction in [0, 1]")
    if imr.null_count() or ((imr <= 0) | (imr > 1)).any():
        raise _fail(endpoint, "field 'initialMargin' must be a fraction in (0, 1]")
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(read_ts).cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("tier"),
        pl.col("cap").shift(1, fill_value=0.0).alias("notional_floor_usd"),
        pl.col("cap").alias("notional_cap_usd"),
        "mmr",
        pl.col("maint").alias("maint_amount_usd"),
        (1.0 / pl.col("imr")).alias("max_leverage"),
        pl.lit("usd").alias("bound_unit"),
    )


def parse_insurance(payload: Any) -> pl.DataFrame:
    """Parse a ``/v5/market/insurance`` answer into ``insurance_pool`` rows, one per pool.

    A pool is identified by its coin and its contracts: ``symbols`` split on commas, stripped,
    de-duplicated and sorted, so Bybit listing them in another order keeps the key. ``ts`` is
    the answer's ``updateTime``: collecting again before Bybit updates its figures stores
    nothing new. A row without a coin, symbols, or a numeric ``balance``, or two rows of one
    pool, fail the whole answer (nothing is stored).
    """
    endpoint = "v5/market/insurance"
    rows = _dicts(result_list(payload, endpoint), endpoint)
    update = payload["result"].get("updateTime")
    if update is None:
        raise _fail(endpoint, "result has no 'updateTime'")
    [update_ms] = _ms([update], "updateTime", endpoint).to_list()
    coins = [str(c).strip() for c in _field(rows, "coin", endpoint)]
    pools = []
    for i, raw in enumerate(_field(rows, "symbols", endpoint)):
        names = sorted({s.strip() for s in str(raw or "").split(",")} - {""})
        if not coins[i] or not names:
            raise _fail(endpoint, f"row {i} names no coin or no symbols")
        pools.append(names)
    balance = _num(_field(rows, "balance", endpoint), "balance", endpoint)
    if balance.null_count():
        raise _fail(endpoint, "field 'balance' is empty")
    frame = pl.DataFrame(
        {
            "venue": [VENUE] * len(rows),
            "coin": coins,
            "symbols": [",".join(p) for p in pools],
            "ts": [update_ms] * len(rows),
            "shared": [len(p) > 1 for p in pools],
            "balance_coin": balance,
            "value_usd": _num([r.get("value") for r in rows], "value", endpoint),
        },
        schema_overrides={"ts": pl.Int64, "coin": pl.String, "symbols": pl.String},
    )
    if frame.select("coin", "symbols").is_duplicated().any():
        raise _fail(endpoint, "two rows describe one pool (coin and symbols)")
    return frame.with_columns(pl.col("ts").cast(_UTC_MS).cast(pl.Datetime("us", "UTC"))).sort(
        "coin", "symbols"
    )
