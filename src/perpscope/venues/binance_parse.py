"""Parsers of Binance USDⓈ-M and spot REST payloads into store rows.

This module is the only place where Binance's units, symbols and enums become perpscope's. Each
function takes the decoded JSON of one endpoint, spelled as Binance spells it, and returns a polars
frame in the schema of one store table (``domain.schema``). A payload that breaks the documented
shape (not a list, a missing or renamed field, a value that is not a number, an unknown contract
type) raises :class:`~perpscope.errors.DataContractError` naming the endpoint, the row and the
field; nothing is half-parsed.

Wire formats (Binance docs, "USDⓈ-M Futures / Market Data"):

- ``GET /fapi/v1/fundingRate``: ``[{symbol, fundingRate, fundingTime (ms), markPrice}]``.
  Rows carry no interval: a settlement's interval is the time since the previous settlement.
- ``GET /fapi/v1/klines`` (and ``markPriceKlines``, ``indexPriceKlines``,
  ``premiumIndexKlines``, spot ``/api/v3/klines``): ``[[openTime, o, h, l, c, volume (base),
  closeTime, quoteVolume, trades, takerBuyBase, takerBuyQuote, ignore]]``.
- ``GET /fapi/v1/premiumIndex``: ``{symbol, markPrice, indexPrice, estimatedSettlePrice,
  lastFundingRate (the accruing period's rate), interestRate, nextFundingTime, time}``.
- ``GET /fapi/v1/openInterest``: ``{symbol, openInterest (base units), time}``.
- ``GET /futures/data/openInterestHist``: ``[{symbol, sumOpenInterest (base),
  sumOpenInterestValue (USD), timestamp}]``.
- ``GET /futures/data/{globalLongShortAccountRatio, topLongShortAccountRatio,
  topLongShortPositionRatio}``: ``[{symbol, longShortRatio, longAccount, shortAccount,
  timestamp}]``.
- ``GET /futures/data/takerlongshortRatio``: ``[{buySellRatio, buyVol, sellVol, timestamp}]``.
- ``GET /fapi/v1/exchangeInfo``: ``{symbols: [{symbol, pair, contractType, deliveryDate, status,
  baseAsset, quoteAsset, marginAsset, filters: [...]}]}``; ``GET /fapi/v1/fundingInfo``:
  ``[{symbol, fundingIntervalHours, ...}]`` for symbols whose interval was adjusted.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import DataContractError
from perpscope.venues._parse_common import INSTRUMENTS_SCHEMA, Wire, gap_interval_h

__all__ = [
    "parse_agg_trades",
    "KLINE_ENDPOINTS",
    "canonical_from_symbol",
    "parse_exchange_info",
    "parse_funding_rate",
    "parse_klines",
    "parse_leverage_brackets",
    "parse_long_short",
    "parse_open_interest",
    "parse_open_interest_hist",
    "parse_premium_index",
    "parse_taker_volume",
    "venue_symbol",
]

VENUE: Final = "binance"
KLINE_ENDPOINTS: Final = {
    "trade": "fapi/v1/klines",
    "mark": "fapi/v1/markPriceKlines",
    "index": "fapi/v1/indexPriceKlines",
    "premium": "fapi/v1/premiumIndexKlines",
}
_CONTRACT_TYPES: Final = {
    "PERPETUAL": InstrumentKind.PERP,
    "PERPETUAL_DELIVERING": InstrumentKind.PERP,
    "TRADIFI_PERPETUAL": InstrumentKind.PERP,
    "CURRENT_QUARTER": InstrumentKind.FUTURE,
    "NEXT_QUARTER": InstrumentKind.FUTURE,
    "CURRENT_MONTH": InstrumentKind.FUTURE,
    "NEXT_MONTH": InstrumentKind.FUTURE,
}
_STATUS: Final = {
    "TRADING": "trading",
    "PENDING_TRADING": "pending",
    "PRE_TRADING": "pending",
    "BREAK": "halted",
    "PRE_DELIVERING": "halted",
    "DELIVERING": "halted",
    "PRE_SETTLE": "halted",
    "SETTLING": "halted",
    "DELIVERED": "delisted",
    "CLOSE": "delisted",
}
_PERPETUAL_DELIVERY: Final = "4133404800000"  # Binance's "never" delivery date of perpetuals
_QUOTES: Final = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB")
_DATED_RE: Final = re.compile(r"^([A-Z0-9]+)_(\d{2})(\d{2})(\d{2})$")
_UTC_MS: Final = pl.Datetime("ms", "UTC")

_W: Final = Wire("binance", bools_are_numbers=True)
_field = _W.field
_num = functools.partial(_W.num_cast, empty_is_null=False)  # "" is a violation
_ms = functools.partial(_W.ms_cast, keep_null=True)


# ---------------------------------------------------------------------------------- helpers


def _rows(payload: Any, endpoint: str, kind: type = dict) -> list[Any]:
    if not isinstance(payload, list):
        shown = repr(payload)[:60]
        raise DataContractError(
            f"binance {endpoint}: expected a JSON list, got {type(payload).__name__} {shown} "
            "(truncated or malformed response)"
        )
    for i, row in enumerate(payload):
        if not isinstance(row, kind):
            raise DataContractError(
                f"binance {endpoint}: row {i} is a {type(row).__name__}, expected {kind.__name__}"
            )
    return payload


def _utc(ms: pl.Expr) -> pl.Expr:
    return ms.cast(_UTC_MS)


def venue_symbol(instrument: Instrument) -> str:
    """Binance's symbol of a canonical instrument (``BTC-USDT-PERP`` -> ``BTCUSDT``)."""
    if instrument.kind is InstrumentKind.FUTURE:
        assert instrument.expiry is not None
        return f"{instrument.base}{instrument.quote}_{instrument.expiry:%y%m%d}"
    return f"{instrument.base}{instrument.quote}"


def canonical_from_symbol(symbol: str) -> str | None:
    """Canonical id of a USDⓈ-M symbol from its spelling alone (``None`` if it cannot be read).

    ``BTCUSDT`` -> ``BTC-USDT-PERP``; ``BTCUSDT_250926`` -> ``BTC-USDT-26SEP25``. Used when no
    ``exchangeInfo`` is at hand; :func:`parse_exchange_info` is authoritative.
    """
    dated = _DATED_RE.match(symbol)
    pair = dated.group(1) if dated else symbol
    for quote in _QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            base = pair[: -len(quote)]
            try:
                if dated:
                    yy, mm, dd = (int(dated.group(k)) for k in (2, 3, 4))
                    expiry = date(2000 + yy, mm, dd)
                    return str(Instrument(base, quote, InstrumentKind.FUTURE, expiry=expiry))
                return str(Instrument(base, quote, InstrumentKind.PERP))
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------------------- parsers


def parse_funding_rate(
    payload: Any,
    instrument: str,
    prev_ts_ms: int | None = None,
    fallback_interval_h: float = 8.0,
) -> pl.DataFrame:
    """Parse ``GET /fapi/v1/fundingRate`` into ``funding`` rows.

    A settlement's interval is the time since the previous settlement, in whole hours. When
    that gap is not a funding interval (1, 2, 4 or 8 h: a hole in the history, or the first row
    of the history), the interval of the nearest following row is used, then the nearest
    preceding one, then ``fallback_interval_h`` (the symbol's current interval).

    Args:
        payload: the decoded response.
        instrument: the canonical id the rows are stored under.
        prev_ts_ms: the previous settlement already stored (its ``ts`` in ms), if any.
        fallback_interval_h: interval when no gap in the page is an interval.
    """
    endpoint = "fapi/v1/fundingRate"
    rows = _rows(payload, endpoint)
    times = _ms(_field(rows, "fundingTime", endpoint), "t", endpoint)
    rates = _num(_field(rows, "fundingRate", endpoint), "rate", endpoint)
    marks = [r.get("markPrice") for r in rows]
    mark = _num([m if m not in ("", None) else None for m in marks], "mark_px", endpoint)
    # settlement times jitter by a few ms (…00:00:00.002): snap to the whole minute
    snapped = ((times + 30_000) // 60_000) * 60_000
    frame = pl.DataFrame([snapped.alias("t"), rates, mark]).sort("t")
    interval = gap_interval_h(prev_ts_ms)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        _utc(pl.col("t")).alias("ts"),
        pl.col("rate"),
        interval.backward_fill().forward_fill().fill_null(fallback_interval_h).alias("interval_h"),
        pl.col("mark_px"),
    )


def parse_klines(
    payload: Any,
    instrument: str,
    kind: str,
    timeframe: str,
    *,
    now_ms: int,
    endpoint: str = "fapi/v1/klines",
) -> pl.DataFrame:
    """Parse a klines response into ``ohlcv`` rows, dropping the bar that is still open.

    Mark, index and premium-index klines carry no volume (Binance sends ``"0"``): their volume
    columns are stored as null, not zero.

    Args:
        payload: the decoded response (a list of 12-element arrays).
        instrument: canonical id.
        kind: ``trade`` | ``mark`` | ``index`` | ``premium``.
        timeframe: the kline interval (``1h``).
        now_ms: the current time; bars whose close time is not yet past are dropped.
        endpoint: the endpoint, for messages.
    """
    rows = _rows(payload, endpoint, list)
    if any(len(r) < 11 for r in rows):
        i = next(i for i, r in enumerate(rows) if len(r) < 11)
        raise DataContractError(
            f"binance {endpoint}: row {i} has {len(rows[i])} fields, expected 12"
        )
    cols: list[Sequence[Any]] = list(zip(*rows, strict=False)) if rows else [[]] * 11
    frame = pl.DataFrame(
        [
            _ms(cols[0], "t", endpoint),
            _num(cols[1], "o", endpoint),
            _num(cols[2], "h", endpoint),
            _num(cols[3], "l", endpoint),
            _num(cols[4], "c", endpoint),
            _num(cols[5], "volume", endpoint),
            _ms(cols[6], "close_t", endpoint),
            _num(cols[7], "quote_volume", endpoint),
            _num(cols[9], "taker_buy_volume", endpoint),
        ]
    )
    traded = kind == "trade"
    volume_cols = ("volume", "quote_volume", "taker_buy_volume")
    return frame.filter(pl.col("close_t") < now_ms).select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(kind).alias("kind"),
        pl.lit(timeframe).alias("timeframe"),
        _utc(pl.col("t")).alias("ts"),
        "o",
        "h",
        "l",
        "c",
        *[pl.col(c) if traded else pl.lit(None, pl.Float64).alias(c) for c in volume_cols],
    )


def parse_premium_index(
    payload: Any, to_canonical: Callable[[str], str | None], interval_h: Mapping[str, float]
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse the all-symbol ``GET /fapi/v1/premiumIndex`` into ``funding_snapshot`` rows.

    ``lastFundingRate`` is the rate accruing in the current period (what settles next), stored
    as ``rate``; Binance publishes no separate prediction, so ``predicted_rate`` is null.
    A ``nextFundingTime`` of 0 (dated futures) is stored as null.

    Returns:
        The rows and the venue symbols that could not be mapped to a canonical id.
    """
    endpoint = "fapi/v1/premiumIndex"
    rows = _rows([payload] if isinstance(payload, dict) else payload, endpoint)
    symbols = _field(rows, "symbol", endpoint)
    ids = [to_canonical(s) for s in symbols]
    unmapped = tuple(s for s, i in zip(symbols, ids, strict=True) if i is None)
    keep = [i for i, c in enumerate(ids) if c is not None]
    rows = [rows[i] for i in keep]
    ids_kept = [ids[i] for i in keep]
    rate = [r.get("lastFundingRate") or None for r in rows]  # "" for dated contracts
    frame = pl.DataFrame(
        [
            pl.Series("instrument", ids_kept, dtype=pl.String),
            _ms(_field(rows, "time", endpoint), "t", endpoint),
            _num(rate, "rate", endpoint),
            _ms(_field(rows, "nextFundingTime", endpoint), "next_t", endpoint),
            _num(_field(rows, "markPrice", endpoint), "mark_px", endpoint),
            _num(_field(rows, "indexPrice", endpoint), "index_px", endpoint),
        ]
    )
    out = frame.select(
        pl.lit(VENUE).alias("venue"),
        "instrument",
        _utc(pl.col("t")).alias("ts"),
        "rate",
        pl.lit(None, pl.Float64).alias("predicted_rate"),
        pl.col("instrument")
        .replace_strict(interval_h, default=None, return_dtype=pl.Float64)
        .alias("interval_h"),
        _utc(pl.when(pl.col("next_t") > 0).then(pl.col("next_t"))).alias("next_funding_ts"),
        "mark_px",
        "index_px",
    )
    return out.sort("instrument"), unmapped


def parse_open_interest(payload: Any, instrument: str) -> pl.DataFrame:
    """Parse ``GET /fapi/v1/openInterest`` into one ``open_interest`` row (source snapshot).

    USDⓈ-M open interest is in base units (contract size 1); its USD value is not in this
    payload and is left null here (the snapshot fills it from the mark price).
    """
    endpoint = "fapi/v1/openInterest"
    rows = _rows([payload] if isinstance(payload, dict) else payload, endpoint)
    oi = _num(_field(rows, "openInterest", endpoint), "oi_value", endpoint)
    t = _ms(_field(rows, "time", endpoint), "t", endpoint)
    return pl.DataFrame([t, oi]).select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit("snapshot").alias("source"),
        _utc(pl.col("t")).alias("ts"),
        "oi_value",
        pl.lit("base").alias("oi_unit"),
        pl.col("oi_value").alias("oi_base"),
        pl.lit(None, pl.Float64).alias("oi_usd"),
    )


def parse_open_interest_hist(payload: Any, instrument: str, period: str) -> pl.DataFrame:
    """Parse ``GET /futures/data/openInterestHist`` into ``open_interest`` rows (hist_<period>)."""
    endpoint = "futures/data/openInterestHist"
    rows = _rows(payload, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", endpoint), "t", endpoint),
            _num(_field(rows, "sumOpenInterest", endpoint), "oi_base", endpoint),
            _num(_field(rows, "sumOpenInterestValue", endpoint), "oi_usd", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(f"hist_{period}").alias("source"),
        _utc(pl.col("t")).alias("ts"),
        pl.col("oi_base").alias("oi_value"),
        pl.lit("base").alias("oi_unit"),
        "oi_base",
        "oi_usd",
    )


def parse_long_short(payload: Any, instrument: str, kind: str, period: str) -> pl.DataFrame:
    """Parse a long/short ratio response into ``long_short`` rows.

    ``longAccount``/``shortAccount`` are shares (fractions) of accounts, or of positions for
    ``topLongShortPositionRatio``, despite the field names.
    """
    endpoint = f"futures/data/{LONG_SHORT_ENDPOINTS[kind]}"
    rows = _rows(payload, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", endpoint), "t", endpoint),
            _num(_field(rows, "longAccount", endpoint), "long_frac", endpoint),
            _num(_field(rows, "shortAccount", endpoint), "short_frac", endpoint),
            _num(_field(rows, "longShortRatio", endpoint), "long_short_ratio", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(kind).alias("kind"),
        pl.lit(period).alias("period"),
        _utc(pl.col("t")).alias("ts"),
        "long_frac",
        "short_frac",
        "long_short_ratio",
    )


LONG_SHORT_ENDPOINTS: Final = {
    "global_account": "globalLongShortAccountRatio",
    "top_account": "topLongShortAccountRatio",
    "top_position": "topLongShortPositionRatio",
}


def parse_taker_volume(payload: Any, instrument: str, period: str) -> pl.DataFrame:
    """Parse ``GET /futures/data/takerlongshortRatio`` into ``taker_volume`` rows (base units)."""
    endpoint = "futures/data/takerlongshortRatio"
    rows = _rows(payload, endpoint)
    frame = pl.DataFrame(
        [
            _ms(_field(rows, "timestamp", endpoint), "t", endpoint),
            _num(_field(rows, "buyVol", endpoint), "buy_volume_base", endpoint),
            _num(_field(rows, "sellVol", endpoint), "sell_volume_base", endpoint),
            _num(_field(rows, "buySellRatio", endpoint), "buy_sell_ratio", endpoint),
        ]
    )
    return frame.sort("t").select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(period).alias("period"),
        _utc(pl.col("t")).alias("ts"),
        "buy_volume_base",
        "sell_volume_base",
        "buy_sell_ratio",
    )


def _filter(filters: Any, kind: str, key: str) -> float | None:
    for f in filters if isinstance(filters, list) else []:
        if isinstance(f, dict) and f.get("filterType") == kind and key in f:
            return float(f[key])
    return None


def parse_exchange_info(
    payload: Any,
    funding_info: Any,
    read_ms: int,
    default_interval_h: float = 8.0,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse ``GET /fapi/v1/exchangeInfo`` (+ ``fundingInfo``) into ``instruments`` rows.

    ``contractType`` is a closed enum: an unknown value raises. A symbol without a contract type
    (``""``) is a perpetual when its delivery date is Binance's far-future ``4133404800000`` (as
    ccxt reads it too), otherwise it is returned among the skipped symbols. ``status`` is
    open-ended: unknown values are stored lower-cased as the venue spelled them.

    Returns:
        The rows and the skipped venue symbols.
    """
    endpoint = "fapi/v1/exchangeInfo"
    if not isinstance(payload, dict) or not isinstance(payload.get("symbols"), list):
        raise DataContractError(f"binance {endpoint}: expected an object with a 'symbols' list")
    intervals = {
        r["symbol"]: float(r["fundingIntervalHours"])
        for r in _rows(funding_info, "fapi/v1/fundingInfo")
        if "symbol" in r and r.get("fundingIntervalHours") is not None
    }
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    for i, s in enumerate(_rows(payload["symbols"], endpoint)):
        try:
            symbol, ctype, status = s["symbol"], s["contractType"], s["status"]
            base, quote, settle = s["baseAsset"], s["quoteAsset"], s["marginAsset"]
        except KeyError as exc:
            raise DataContractError(
                f"binance {endpoint}: symbols[{i}] has no field {exc.args[0]!r}"
            ) from None
        if ctype == "" and str(s.get("deliveryDate")) == _PERPETUAL_DELIVERY:
            ctype = "PERPETUAL"  # some perpetuals carry no contract type (BTCSTUSDT)
        if ctype == "":
            skipped.append(symbol)
            continue
        if ctype not in _CONTRACT_TYPES:
            raise DataContractError(
                f"binance {endpoint}: symbols[{i}] ({symbol}) has unknown contractType "
                f"{ctype!r}; known: {', '.join(_CONTRACT_TYPES)}"
            )
        kind = _CONTRACT_TYPES[ctype]
        expiry = (
            datetime.fromtimestamp(int(s["deliveryDate"]) / 1000, UTC)
            if kind is InstrumentKind.FUTURE
            else None
        )
        try:
            inst = Instrument(base, quote, kind, expiry=expiry.date() if expiry else None)
        except ValueError:
            skipped.append(symbol)
            continue
        perp = kind is InstrumentKind.PERP
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
                "contract_size": 1.0,
                "tick_size_px": _filter(s.get("filters"), "PRICE_FILTER", "tickSize"),
                "lot_size": _filter(s.get("filters"), "LOT_SIZE", "stepSize"),
                "funding_interval_h": intervals.get(symbol, default_interval_h) if perp else None,
                "expiry_ts": expiry,
                "status": _STATUS.get(str(status), str(status).lower()),
            }
        )
    return pl.DataFrame(out, schema=INSTRUMENTS_SCHEMA, orient="row"), tuple(skipped)


def parse_agg_trades(payload: Any) -> list[tuple[int, int, float, bool]]:
    """Parse ``GET /fapi/v1/aggTrades`` into ``(id, T, qty, taker bought)`` tuples.

    ``m`` true means the buyer was the maker, so the taker SOLD.
    """
    endpoint = "fapi/v1/aggTrades"
    out = []
    for i, r in enumerate(_rows(payload, endpoint)):
        try:
            agg_id, ts, qty, maker = r["a"], r["T"], float(r["q"]), r["m"]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataContractError(f"binance {endpoint}: row {i} is malformed ({exc})") from None
        if type(agg_id) is not int or type(ts) is not int or not math.isfinite(qty):
            raise DataContractError(f"binance {endpoint}: row {i} has a bad id, time or size")
        out.append((agg_id, ts, qty, not maker))
    return out


def parse_leverage_brackets(
    payload: Any, instrument: str, symbol: str, read_ms: int
) -> pl.DataFrame:
    """Parse signed ``/fapi/v1/leverageBracket`` into ``leverage_tiers`` rows (USD bounds).

    The answer is ``[{symbol, brackets: [{bracket, initialLeverage, notionalCap, notionalFloor,
    maintMarginRatio, cum}]}]`` (one object instead of the list is accepted too): notional bounds
    in USDT, ``maintMarginRatio`` a fraction, ``cum`` the maintenance amount.
    """
    endpoint = "fapi/v1/leverageBracket"
    entries = _rows([payload] if isinstance(payload, dict) else payload, endpoint)
    mine = [e for e in entries if e.get("symbol") == symbol]
    if not mine or not isinstance(mine[0].get("brackets"), list) or not mine[0]["brackets"]:
        raise DataContractError(f"binance {endpoint}: no brackets of {symbol}")
    rows = _rows(mine[0]["brackets"], endpoint)
    frame = pl.DataFrame(
        [
            _num(_field(rows, "bracket", endpoint), "tier", endpoint),
            _num(_field(rows, "notionalFloor", endpoint), "lo", endpoint),
            _num(_field(rows, "notionalCap", endpoint), "hi", endpoint),
            _num(_field(rows, "maintMarginRatio", endpoint), "mmr", endpoint),
            _num(_field(rows, "cum", endpoint), "cum", endpoint),
            _num(_field(rows, "initialLeverage", endpoint), "lev", endpoint),
        ]
    ).sort("hi")
    if frame.null_count().sum_horizontal()[0]:
        raise DataContractError(f"binance {endpoint}: a bracket field is empty")
    if ((frame["mmr"] < 0) | (frame["mmr"] > 1)).any():
        raise DataContractError(f"binance {endpoint}: 'maintMarginRatio' must be in [0, 1]")
    if (frame["lev"] <= 0).any() or (frame["hi"] <= frame["lo"]).any():
        raise DataContractError(f"binance {endpoint}: a bracket has no positive range/leverage")
    read_ts = datetime.fromtimestamp(read_ms / 1000, UTC)
    return frame.select(
        pl.lit(VENUE).alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.lit(read_ts).cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.col("tier").cast(pl.Int32),
        pl.col("lo").alias("notional_floor_usd"),
        pl.col("hi").alias("notional_cap_usd"),
        "mmr",
        pl.col("cum").alias("maint_amount_usd"),
        pl.col("lev").alias("max_leverage"),
        pl.lit("usd").alias("bound_unit"),
    )
