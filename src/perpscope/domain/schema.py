"""Every store table, defined once: columns, Arrow types, units and natural keys.

Conventions (DESIGN.md, "Data model"):

- all timestamps are timezone-aware UTC, microsecond precision (``ts`` is the event time);
- rates are fractions per funding interval (0.0005 = 0.05%), never percent;
- units stand in column names: ``_px`` (a price in the instrument's quote currency), ``_usd``,
  ``_h`` (hours), ``_contracts``, ``_base`` (base-asset units), ``_bps``;
- OHLCV keeps DESIGN.md's short names (``o h l c volume quote_volume taker_buy_volume``),
  whose units are given below;
- every table has a natural key; ingest is idempotent on it (an existing key is never
  written twice).

Add a table here and the store, ``store info``, ``export`` and the docs pick it up.

Values the store refuses are declared here too, once for every writer (:func:`row_problems`):
non-finite numbers in any float column, timestamps before 2009-01-03 (the first Bitcoin block) or
more than :data:`FUTURE_SLACK` after now (dates of a schedule, like expiries, up to
:data:`LATEST_SCHEDULE_TS`), and each column's domain where it is known (prices > 0, funding
intervals of 1 to 24 hours, bar lengths like ``1h``, sides and kinds from their lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:  # pyarrow is imported where a schema is built or rows are checked (writes)
    import polars as pl
    import pyarrow as pa

__all__ = [
    "EARLIEST_TS",
    "FUTURE_SLACK",
    "LATEST_SCHEDULE_TS",
    "PERIOD_RE",
    "TABLES",
    "Bounds",
    "Column",
    "TableSpec",
    "UTC_TS",
    "arrow_type",
    "polars_type",
    "row_problems",
    "table_spec",
]

# Column types by name; Arrow and polars types are made from them on demand, so reading the
# store (polars) never has to import pyarrow.
UTC_TS: Final = "timestamp[us, UTC]"
_STR: Final = "string"
_F64: Final = "float64"
_I64: Final = "int64"
_I32: Final = "int32"
_BOOL: Final = "bool"
_TYPES: Final = (UTC_TS, _STR, _F64, _I64, _I32, _BOOL)


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a column type name (``UTC_TS``, ``string``, ``float64`` ...)."""
    import pyarrow as pa

    if name == UTC_TS:
        return pa.timestamp("us", tz="UTC")
    return {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
            "int32": pa.int32(), "bool": pa.bool_()}[name]  # fmt: skip


def polars_type(name: str) -> pl.DataType:
    """The polars type of a column type name, as polars reads that Arrow type."""
    import polars as pl

    if name == UTC_TS:
        return pl.Datetime("us", "UTC")
    return {"string": pl.String(), "float64": pl.Float64(), "int64": pl.Int64(),
            "int32": pl.Int32(), "bool": pl.Boolean()}[name]  # fmt: skip


EARLIEST_TS: Final = datetime(2009, 1, 3, tzinfo=UTC)
"""No market data is older than the first Bitcoin block; earlier times are unit or parse errors."""

FUTURE_SLACK: Final = timedelta(days=3)
"""How far past now an event time may lie (clock skew, a venue's next settlement)."""

LATEST_SCHEDULE_TS: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""The latest date of a schedule (an expiry, a next settlement) the store accepts."""

PERIOD_RE: Final = r"^[1-9][0-9]*[mhdwM]$"
"""A bar length or aggregation period: a positive count and m, h, d, w or M (1m, 4h, 1d, 1M)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """The range a numeric column's values must lie in (beyond being finite).

    ``exempt`` names a ``(column, value)`` pair whose rows are not checked (premium-index candles
    may be negative while price candles may not).
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    exempt: tuple[str, str] | None = None

    def text(self) -> str:
        """The rule in words: ``must be > 0``, ``must be in [1, 24]``."""
        if self.lo is not None and self.hi is not None:
            return f"must be in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f"must be {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"must be <= {self.hi:g}"


_POSITIVE: Final = Bounds(lo=0.0, lo_open=True)
_NON_NEGATIVE: Final = Bounds(lo=0.0)
_FRACTION: Final = Bounds(lo=0.0, hi=1.0)
_INTERVAL_H: Final = Bounds(lo=1.0, hi=24.0)
_PRICE_BAR: Final = Bounds(lo=0.0, lo_open=True, exempt=("kind", "premium"))


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name, Arrow type, unit and meaning, and the values it may hold.

    Floats must always be finite; ``bounds`` narrows them further. Timestamps must lie between
    :data:`EARLIEST_TS` and now + :data:`FUTURE_SLACK` (``horizon="event"``) or
    :data:`LATEST_SCHEDULE_TS` (``horizon="schedule"``). Strings may be limited to ``choices`` or
    to a regular expression ``pattern``.
    """

    name: str
    kind: str
    doc: str
    nullable: bool = True
    bounds: Bounds | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    horizon: Literal["event", "schedule"] = "event"

    def __post_init__(self) -> None:
        if self.kind not in _TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.kind!r}")

    @property
    def type(self) -> pa.DataType:
        """The column's Arrow type."""
        return arrow_type(self.kind)

    def field(self) -> pa.Field:
        """The Arrow field for this column."""
        import pyarrow as pa

        return pa.field(self.name, self.type, nullable=self.nullable)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A store table: columns, natural key and the time column analytics use."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = "ts"

    @property
    def schema(self) -> pa.Schema:
        """The table's Arrow schema."""
        import pyarrow as pa

        return pa.schema([c.field() for c in self.columns])

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """The table's columns and their polars types, as polars reads the stored files."""
        return {c.name: polars_type(c.kind) for c in self.columns}

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the columns, in order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


def _k(
    name: str,
    type_: str,
    doc: str,
    *,
    choices: tuple[str, ...] = (),
    pattern: str | None = None,
) -> Column:
    """A key column (never null)."""
    return Column(name, type_, doc, nullable=False, choices=choices, pattern=pattern)


_VENUE = _k("venue", _STR, "venue id, a lowercase word (binance, sim1, gate)")
_INSTRUMENT = _k("instrument", _STR, "canonical instrument id (BTC-USDT-PERP)")
_TS = _k("ts", UTC_TS, "event time, UTC")

TABLES: Final[dict[str, TableSpec]] = {
    t.name: t
    for t in (
        TableSpec(
            "instruments",
            "Instrument metadata as listed by a venue at a time.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("ts", UTC_TS, "time the listing was read, UTC"),
                Column("venue_symbol", _STR, "the venue's own symbol (BTCUSDT)"),
                Column("kind", _STR, "spot | perp | future | option"),
                Column("base", _STR, "base asset"),
                Column("quote", _STR, "quote asset"),
                Column("settle", _STR, "settlement (margin) asset"),
                Column(
                    "contract_size",
                    _F64,
                    "base units (linear) or USD (inverse) per contract",
                    bounds=_POSITIVE,
                ),
                Column("tick_size_px", _F64, "price increment", bounds=_POSITIVE),
                Column("lot_size", _F64, "quantity increment, in contracts", bounds=_POSITIVE),
                Column(
                    "funding_interval_h",
                    _F64,
                    "funding interval in hours, perps only",
                    bounds=_INTERVAL_H,
                ),
                Column("expiry_ts", UTC_TS, "expiry, dated contracts only", horizon="schedule"),
                Column("status", _STR, "venue status, mapped to trading | halted | delisted"),
            ),
            ("venue", "instrument", "ts"),
        ),
        TableSpec(
            "funding",
            "Realised funding settlements.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("ts", UTC_TS, "settlement time, UTC, snapped to the whole minute"),
                Column(
                    "rate", _F64, "funding rate per interval, a fraction (0.0001 = 0.01%)", False
                ),
                Column(
                    "interval_h",
                    _F64,
                    "funding interval in hours (1, 4, 8...)",
                    False,
                    bounds=_INTERVAL_H,
                ),
                Column(
                    "mark_px",
                    _F64,
                    "mark price at settlement, when the venue reports it",
                    bounds=_POSITIVE,
                ),
            ),
            ("venue", "instrument", "ts"),
        ),
        TableSpec(
            "funding_snapshot",
            "Current and predicted funding as seen at a time (not a settlement).",
            (
                _VENUE,
                _INSTRUMENT,
                _k("ts", UTC_TS, "observation time, UTC"),
                Column("rate", _F64, "current (last or accruing) funding rate per interval"),
                Column("predicted_rate", _F64, "predicted next funding rate, when published"),
                Column("interval_h", _F64, "funding interval in hours", bounds=_INTERVAL_H),
                Column("next_funding_ts", UTC_TS, "next settlement time, UTC", horizon="schedule"),
                Column("mark_px", _F64, "mark price", bounds=_POSITIVE),
                Column("index_px", _F64, "index (spot composite) price", bounds=_POSITIVE),
            ),
            ("venue", "instrument", "ts"),
        ),
        TableSpec(
            "leverage_tiers",
            "Tiered maintenance margin as published by a venue at a time.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("ts", UTC_TS, "time the tiers were read, UTC"),
                _k("tier", _I32, "tier number, 1 = smallest notional"),
                Column(
                    "notional_floor_usd",
                    _F64,
                    "lower notional bound of the tier",
                    False,
                    bounds=_NON_NEGATIVE,
                ),
                Column("notional_cap_usd", _F64, "upper notional bound of the tier", False),
                Column("mmr", _F64, "maintenance margin rate, a fraction", False, bounds=_FRACTION),
                Column("maint_amount_usd", _F64, "maintenance amount (cum) of the tier", False),
                Column(
                    "max_leverage", _F64, "largest leverage allowed in the tier", bounds=_POSITIVE
                ),
                Column(
                    "bound_unit",
                    _STR,
                    "unit of the two bounds: usd (also when null), base (coin) or contracts",
                    choices=("usd", "base", "contracts"),
                ),
            ),
            ("venue", "instrument", "ts", "tier"),
        ),
        TableSpec(
            "ohlcv",
            "Candles of trade, mark, index and premium-index prices.",
            (
                _VENUE,
                _INSTRUMENT,
                _k(
                    "kind",
                    _STR,
                    "trade | mark | index | premium",
                    choices=("trade", "mark", "index", "premium"),
                ),
                _k("timeframe", _STR, "bar length: 1m 5m 15m 1h 4h 1d ...", pattern=PERIOD_RE),
                _k("ts", UTC_TS, "bar open time, UTC"),
                Column(
                    "o",
                    _F64,
                    "open (price; premium bars: premium index fraction)",
                    False,
                    bounds=_PRICE_BAR,
                ),
                Column("h", _F64, "high", False, bounds=_PRICE_BAR),
                Column("l", _F64, "low", False, bounds=_PRICE_BAR),
                Column("c", _F64, "close", False, bounds=_PRICE_BAR),
                Column(
                    "volume",
                    _F64,
                    "traded volume in base units (contracts x size)",
                    bounds=_NON_NEGATIVE,
                ),
                Column(
                    "quote_volume", _F64, "traded volume in quote currency", bounds=_NON_NEGATIVE
                ),
                Column(
                    "taker_buy_volume", _F64, "taker-buy volume in base units", bounds=_NON_NEGATIVE
                ),
            ),
            ("venue", "instrument", "kind", "timeframe", "ts"),
        ),
        TableSpec(
            "open_interest",
            "Open interest as reported, with its source in the key so sources never overwrite.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("source", _STR, "snapshot | hist_<period> (e.g. hist_5m) | archive | import"),
                _TS,
                Column(
                    "oi_value",
                    _F64,
                    "OI as the venue reports it, in oi_unit",
                    False,
                    bounds=_NON_NEGATIVE,
                ),
                Column(
                    "oi_unit",
                    _STR,
                    "contracts | base | usd",
                    False,
                    choices=("contracts", "base", "usd"),
                ),
                Column(
                    "oi_base", _F64, "one-sided OI in base units, when known", bounds=_NON_NEGATIVE
                ),
                Column(
                    "oi_usd", _F64, "one-sided OI as USD notional, when known", bounds=_NON_NEGATIVE
                ),
            ),
            ("venue", "instrument", "source", "ts"),
        ),
        TableSpec(
            "long_short",
            "Long/short ratios: accounts and top traders.",
            (
                _VENUE,
                _INSTRUMENT,
                _k(
                    "kind",
                    _STR,
                    "global_account | top_account | top_position",
                    choices=("global_account", "top_account", "top_position"),
                ),
                _k("period", _STR, "aggregation period (5m, 1h, ...)", pattern=PERIOD_RE),
                _TS,
                Column("long_frac", _F64, "share long, a fraction", bounds=_FRACTION),
                Column("short_frac", _F64, "share short, a fraction", bounds=_FRACTION),
                Column("long_short_ratio", _F64, "long_frac / short_frac", bounds=_NON_NEGATIVE),
            ),
            ("venue", "instrument", "kind", "period", "ts"),
        ),
        TableSpec(
            "taker_volume",
            "Taker buy and sell volume per period.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("period", _STR, "aggregation period (5m, 1h, ...)", pattern=PERIOD_RE),
                _TS,
                Column(
                    "buy_volume_base", _F64, "taker-buy volume, base units", bounds=_NON_NEGATIVE
                ),
                Column(
                    "sell_volume_base", _F64, "taker-sell volume, base units", bounds=_NON_NEGATIVE
                ),
                Column("buy_sell_ratio", _F64, "buy / sell", bounds=_NON_NEGATIVE),
            ),
            ("venue", "instrument", "period", "ts"),
        ),
        TableSpec(
            "liquidations",
            "Realised liquidations; side is the side of the liquidated position.",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("event_id", _STR, "venue id of the event, or a hash of its fields"),
                Column(
                    "side",
                    _STR,
                    "long | short: the liquidated position's side",
                    False,
                    choices=("long", "short"),
                ),
                Column("px", _F64, "fill (or order) price", bounds=_POSITIVE),
                Column("qty_base", _F64, "quantity in base units", bounds=_NON_NEGATIVE),
                Column("notional_usd", _F64, "USD notional"),
            ),
            ("venue", "instrument", "ts", "event_id"),
        ),
        TableSpec(
            "options_snapshot",
            "Option chain snapshots, one row per instrument and snapshot time.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("ts", UTC_TS, "snapshot time, UTC (when its snapshot was complete)"),
                Column("quote_ts", UTC_TS, "the row's own quote time, UTC (at or before ts)"),
                Column("underlying", _STR, "underlying asset (BTC, ETH)", False),
                Column("expiry_ts", UTC_TS, "expiry time, UTC", False, horizon="schedule"),
                Column("strike_px", _F64, "strike, USD", False, bounds=_POSITIVE),
                Column("option_type", _STR, "C | P", False, choices=("C", "P")),
                Column("contract_size_base", _F64, "base units per contract (1 on Deribit)"),
                Column(
                    "open_interest_contracts",
                    _F64,
                    "open interest, contracts",
                    bounds=_NON_NEGATIVE,
                ),
                Column("volume_contracts", _F64, "24h volume, contracts", bounds=_NON_NEGATIVE),
                Column("volume_usd", _F64, "24h volume, USD", bounds=_NON_NEGATIVE),
                Column("mark_price", _F64, "mark price in price_currency", bounds=_NON_NEGATIVE),
                Column("price_currency", _STR, "currency of mark/bid/ask (BTC on Deribit)"),
                Column("bid_price", _F64, "best bid in price_currency"),
                Column("ask_price", _F64, "best ask in price_currency"),
                Column("mark_iv", _F64, "mark implied volatility, a fraction (0.65 = 65%)"),
                Column("bid_iv", _F64, "implied volatility of the best bid, a fraction"),
                Column("ask_iv", _F64, "implied volatility of the best ask, a fraction"),
                Column(
                    "underlying_px",
                    _F64,
                    "underlying (forward or index) price, USD",
                    bounds=_POSITIVE,
                ),
                Column("index_px", _F64, "index price, USD", bounds=_POSITIVE),
                Column("delta", _F64, "delta from the venue"),
                Column("gamma", _F64, "gamma from the venue"),
                Column("vega", _F64, "vega from the venue"),
                Column("theta", _F64, "theta from the venue"),
            ),
            ("venue", "instrument", "ts"),
        ),
        TableSpec(
            "option_trades",
            "Individual option trades (block and screen).",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("trade_id", _STR, "venue trade id"),
                Column("side", _STR, "buy | sell: the taker's side"),
                Column("price", _F64, "price in price_currency"),
                Column("price_currency", _STR, "currency of price"),
                Column("qty_contracts", _F64, "contracts"),
                Column("notional_usd", _F64, "USD notional (contracts x index)"),
                Column("iv", _F64, "implied volatility of the trade, a fraction"),
                Column("index_px", _F64, "index price at the trade, USD"),
                Column("block", _BOOL, "true for block trades"),
                Column(
                    "liquidation",
                    _STR,
                    "M | T | MT: the maker, the taker or both sides were liquidated (null: none)",
                ),
            ),
            ("venue", "instrument", "ts", "trade_id"),
        ),
        TableSpec(
            "vol_index",
            "Volatility index candles (Deribit DVOL), per underlying.",
            (
                _VENUE,
                _k("underlying", _STR, "underlying asset (BTC, ETH)"),
                _k("index_name", _STR, "the index (dvol)"),
                _k("timeframe", _STR, "bar length: 1m 1h 12h 1d", pattern=PERIOD_RE),
                _k("ts", UTC_TS, "bar open time, UTC"),
                Column(
                    "o",
                    _F64,
                    "open, annualised volatility as a fraction (0.55 = 55)",
                    False,
                    bounds=_NON_NEGATIVE,
                ),
                Column("h", _F64, "high, a fraction", False, bounds=_NON_NEGATIVE),
                Column("l", _F64, "low, a fraction", False, bounds=_NON_NEGATIVE),
                Column("c", _F64, "close, a fraction", False, bounds=_NON_NEGATIVE),
            ),
            ("venue", "underlying", "index_name", "timeframe", "ts"),
        ),
        TableSpec(
            "sim_option_positions",
            "Simulator ground truth: every option position event (open, close, settled).",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("position_id", _I64, "simulator option position id"),
                _k("event", _STR, "open | close | settled"),
                Column("seq", _I64, "order of the event in the run (unique)", False),
                Column("agent", _STR, "directional | hedger | vol_seller | noise"),
                Column("side", _STR, "long | short"),
                Column("qty_contracts", _F64, "contracts"),
                Column(
                    "price",
                    _F64,
                    "trade price (open, close) or settlement value (settled), in the coin",
                ),
                Column("trade_id", _STR, "the option_trades row of an open or close"),
            ),
            ("venue", "instrument", "ts", "position_id", "event"),
        ),
        TableSpec(
            "signals",
            "Setups and scenario readings produced by perpscope, with evidence.",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("signal", _STR, "signal or setup name"),
                Column("direction", _STR, "long | short | neutral"),
                Column("strength", _F64, "score in [0, 1]"),
                Column("evidence_json", _STR, "the readings behind it, as JSON"),
            ),
            ("venue", "instrument", "ts", "signal"),
        ),
        TableSpec(
            "alert_events",
            "Alerts fired by rules.",
            (
                _k("rule", _STR, "alert rule name"),
                _VENUE,
                _INSTRUMENT,
                _TS,
                Column("asset", _STR, "asset of the market (BTC), * for a venue outage"),
                Column("severity", _STR, "info | warning | critical"),
                Column("message", _STR, "what fired, in words"),
                Column("value", _F64, "the value that crossed the threshold"),
                Column("evidence_json", _STR, "the inputs and the threshold, as JSON"),
                Column(
                    "notify_to",
                    _STR,
                    "channels it is for (scheme#hash of each apprise URL), comma-separated",
                ),
                Column("delivered_to", _STR, "channels that accepted it, comma-separated"),
                Column("fired_at", UTC_TS, "wall-clock time the service fired it, UTC"),
            ),
            ("rule", "venue", "instrument", "ts"),
        ),
        TableSpec(
            "collect_cursor",
            "Resume points of collection streams (append-only; the latest ts per stream wins).",
            (
                _VENUE,
                _INSTRUMENT,
                _k("stream", _STR, "what is collected (funding, ohlcv:trade:1h, ...)"),
                _k("ts", UTC_TS, "time the cursor was written, UTC"),
                Column("cursor_ts", UTC_TS, "last event time stored", False),
                Column("note", _STR, "free text (page token, last error)"),
            ),
            ("venue", "instrument", "stream", "ts"),
        ),
        TableSpec(
            "sim_positions",
            "Simulator ground truth: every position event with its true liquidation price.",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("position_id", _I64, "simulator position id"),
                _k("event", _STR, "open | change | close | liquidated | adl"),
                Column(
                    "seq",
                    _I64,
                    "order of the event in the run (unique): read a position's events by (ts, seq)",
                    False,
                ),
                Column(
                    "agent",
                    _STR,
                    "agent kind that holds the position (market_maker: the maker's net inventory, "
                    "no liquidation price)",
                ),
                Column("side", _STR, "long | short"),
                Column("entry_px", _F64, "average entry price", bounds=_POSITIVE),
                Column("qty_base", _F64, "size in base units after the event"),
                Column("notional_usd", _F64, "size x entry, USD"),
                Column("leverage", _F64, "leverage at open"),
                Column("margin_usd", _F64, "isolated margin"),
                Column("liquidation_px", _F64, "true liquidation price on mark"),
                Column(
                    "funding_paid_usd",
                    _F64,
                    "funding paid since open as of the event, USD (negative = received)",
                ),
            ),
            ("venue", "instrument", "ts", "position_id", "event"),
        ),
        TableSpec(
            "insurance_fund",
            "Simulated venues' insurance fund per perpetual: balance at each hour's end and the "
            "hour's flows (a first row at the run's start holds the starting balance).",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                Column("balance_usd", _F64, "fund balance at ts, USD", bounds=_NON_NEGATIVE),
                Column(
                    "inflow_usd",
                    _F64,
                    "liquidation surpluses (margin left at fills better than bankruptcy) received "
                    "in the hour ending at ts",
                    bounds=_NON_NEGATIVE,
                ),
                Column(
                    "outflow_usd",
                    _F64,
                    "shortfalls (fills beyond bankruptcy) paid in the hour",
                    bounds=_NON_NEGATIVE,
                ),
                Column(
                    "uncovered_usd",
                    _F64,
                    "shortfalls the exhausted fund could not pay (recovered by ADL) in the hour",
                    bounds=_NON_NEGATIVE,
                ),
                Column(
                    "unrecovered_usd",
                    _F64,
                    "the part of uncovered_usd ADL could not recover either (too few profitable "
                    "opposite positions open): borne by the venue",
                    bounds=_NON_NEGATIVE,
                ),
                Column("adl_closes", _I64, "positions auto-deleveraged in the hour"),
            ),
            ("venue", "instrument", "ts"),
        ),
        TableSpec(
            "insurance_pool",
            "A venue's insurance fund as published, pool by pool (Bybit: one pool per coin and "
            "group of contracts sharing it); not per instrument and without flows, unlike the "
            "simulator's insurance_fund.",
            (
                _VENUE,
                _k("coin", _STR, "the pool's coin (USDT, USDC, BTC)"),
                _k(
                    "symbols",
                    _STR,
                    "the venue's contracts sharing the pool, its id: sorted, comma-separated",
                ),
                _k("ts", UTC_TS, "the venue's update time of the figures, UTC"),
                Column("shared", _BOOL, "the pool backs more than one contract"),
                Column(
                    "balance_coin",
                    _F64,
                    "balance in the pool's coin (negative: depleted)",
                    False,
                ),
                Column("value_usd", _F64, "the balance valued in USD by the venue"),
            ),
            ("venue", "coin", "symbols", "ts"),
        ),
        TableSpec(
            "adl_events",
            "Simulated auto-deleveraging: each opposite position closed at a liquidated "
            "position's bankruptcy price when the insurance fund was exhausted.",
            (
                _VENUE,
                _INSTRUMENT,
                _TS,
                _k("position_id", _I64, "deleveraged position (sim_positions event adl)"),
                Column(
                    "liquidated_position_id", _I64, "the liquidated position whose loss it covers"
                ),
                Column(
                    "side",
                    _STR,
                    "long | short: the deleveraged position's side",
                    choices=("long", "short"),
                ),
                Column("qty_base", _F64, "size closed, base units", bounds=_NON_NEGATIVE),
                Column(
                    "px",
                    _F64,
                    "close price: the liquidated position's bankruptcy price",
                    bounds=_POSITIVE,
                ),
                Column("mark_px", _F64, "mark price when ranked", bounds=_POSITIVE),
                Column("pnl_pct", _F64, "unrealised PnL / entry value at mark (fraction)"),
                Column(
                    "effective_leverage",
                    _F64,
                    "mark value / (mark value - bankrupt value)",
                    bounds=_POSITIVE,
                ),
                Column("adl_score", _F64, "ADL ranking: pnl_pct x effective_leverage"),
                Column("queue_rank", _I64, "place in the ADL queue of its liquidation (1 = first)"),
                Column("seq", _I64, "seq of its sim_positions adl event"),
            ),
            ("venue", "instrument", "ts", "position_id"),
        ),
    )
}


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name``.

    Raises:
        KeyError: naming the known tables when ``name`` is not one.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}") from None


def row_problems(spec: TableSpec, table: pa.Table, now: datetime) -> pa.Array:
    """Per row of ``table``, the first value the store must never hold, or null for a good row.

    Each problem reads ``column value why`` (``interval_h nan is not a finite number``). The rules
    are the columns' (see :class:`Column`): every float finite and within its ``bounds``, every
    timestamp between :data:`EARLIEST_TS` and ``now`` + :data:`FUTURE_SLACK` (schedule columns:
    :data:`LATEST_SCHEDULE_TS`), every string in its ``choices`` or matching its ``pattern``.
    Columns absent from ``table`` and null values are not checked here (nullability is the
    store's cast). ``table`` must already have the schema's types for the columns it holds.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    reason: pa.Array = pa.nulls(table.num_rows, pa.string())
    for col in reversed(spec.columns):
        if col.name not in table.column_names:
            continue
        arr = table.column(col.name)
        for failed, why in reversed(_column_checks(col, arr, table, now)):
            mask = pc.fill_null(failed, False)
            if not pc.any(mask).as_py():
                continue
            text = pc.binary_join_element_wise(
                pa.scalar(col.name), pc.fill_null(arr.cast(pa.string()), ""), pa.scalar(why), " "
            )
            reason = pc.if_else(mask, text, reason)
    return reason.combine_chunks() if isinstance(reason, pa.ChunkedArray) else reason


def _column_checks(
    col: Column, arr: pa.ChunkedArray, table: pa.Table, now: datetime
) -> list[tuple[pa.ChunkedArray, str]]:
    """(failed mask, why) for each rule of ``col``, in the order they are reported."""
    import pyarrow as pa
    import pyarrow.compute as pc

    checks: list[tuple[pa.ChunkedArray, str]] = []
    if pa.types.is_floating(arr.type):
        checks.append((pc.invert(pc.is_finite(arr)), "is not a finite number"))
        b = col.bounds
        if b is not None:
            out = None
            if b.lo is not None:
                out = pc.less_equal(arr, b.lo) if b.lo_open else pc.less(arr, b.lo)
            if b.hi is not None:
                high = pc.greater(arr, b.hi)
                out = high if out is None else pc.or_(out, high)
            assert out is not None
            if b.exempt is not None and b.exempt[0] in table.column_names:
                out = pc.and_(out, pc.not_equal(table.column(b.exempt[0]), b.exempt[1]))
            where = f" (unless {b.exempt[0]} is {b.exempt[1]})" if b.exempt else ""
            checks.append((out, b.text() + where))
    elif pa.types.is_timestamp(arr.type):
        earliest = pa.scalar(EARLIEST_TS, type=arr.type)
        checks.append((pc.less(arr, earliest), "is before 2009-01-03 (the first Bitcoin block)"))
        if col.horizon == "event":
            latest, why = now + FUTURE_SLACK, f"is more than {FUTURE_SLACK.days} days in the future"
        else:
            latest, why = LATEST_SCHEDULE_TS, f"is after {LATEST_SCHEDULE_TS:%Y-%m-%d}"
        checks.append((pc.greater(arr, pa.scalar(latest, type=arr.type)), why))
    elif pa.types.is_string(arr.type):
        if col.choices:
            allowed = pa.array(col.choices, pa.string())
            # a null is not checked here (nullability is the store's cast)
            outside = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, allowed)))
            checks.append((outside, f"is not {' | '.join(col.choices)}"))
        if col.pattern is not None:
            pattern = col.pattern
            checks.append(
                (pc.invert(pc.match_substring_regex(arr, pattern)), _PATTERN_WORDS[pattern])
            )
    return checks


_PATTERN_WORDS: Final = {PERIOD_RE: "is not a period like 1m, 15m, 1h, 4h, 1d, 1w or 1M"}
