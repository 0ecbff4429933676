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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pyarrow as pa

__all__ = [
    "TABLES",
    "Column",
    "TableSpec",
    "UTC_TS",
    "table_spec",
]

UTC_TS: Final = pa.timestamp("us", tz="UTC")
_STR: Final = pa.string()
_F64: Final = pa.float64()
_I64: Final = pa.int64()
_I32: Final = pa.int32()
_BOOL: Final = pa.bool_()


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name, Arrow type, unit and meaning."""

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True

    def field(self) -> pa.Field:
        """The Arrow field for this column."""
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
        return pa.schema([c.field() for c in self.columns])

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


def _k(name: str, type_: pa.DataType, doc: str) -> Column:
    """A key column (never null)."""
    return Column(name, type_, doc, nullable=False)


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
                Column("contract_size", _F64, "base units (linear) or USD (inverse) per contract"),
                Column("tick_size_px", _F64, "price increment"),
                Column("lot_size", _F64, "quantity increment, in contracts"),
                Column("funding_interval_h", _F64, "funding interval in hours, perps only"),
                Column("expiry_ts", UTC_TS, "expiry, dated contracts only"),
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
                Column("interval_h", _F64, "funding interval in hours (1, 4, 8...)", False),
                Column("mark_px", _F64, "mark price at settlement, when the venue reports it"),
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
                Column("interval_h", _F64, "funding interval in hours"),
                Column("next_funding_ts", UTC_TS, "next settlement time, UTC"),
                Column("mark_px", _F64, "mark price"),
                Column("index_px", _F64, "index (spot composite) price"),
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
                Column("notional_floor_usd", _F64, "lower notional bound of the tier", False),
                Column("notional_cap_usd", _F64, "upper notional bound of the tier", False),
                Column("mmr", _F64, "maintenance margin rate, a fraction", False),
                Column("maint_amount_usd", _F64, "maintenance amount (cum) of the tier", False),
                Column("max_leverage", _F64, "largest leverage allowed in the tier"),
            ),
            ("venue", "instrument", "ts", "tier"),
        ),
        TableSpec(
            "ohlcv",
            "Candles of trade, mark, index and premium-index prices.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("kind", _STR, "trade | mark | index | premium"),
                _k("timeframe", _STR, "bar length: 1m 5m 15m 1h 4h 1d ..."),
                _k("ts", UTC_TS, "bar open time, UTC"),
                Column("o", _F64, "open (price; premium bars: premium index fraction)", False),
                Column("h", _F64, "high", False),
                Column("l", _F64, "low", False),
                Column("c", _F64, "close", False),
                Column("volume", _F64, "traded volume in base units (contracts x size)"),
                Column("quote_volume", _F64, "traded volume in quote currency"),
                Column("taker_buy_volume", _F64, "taker-buy volume in base units"),
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
                Column("oi_value", _F64, "OI as the venue reports it, in oi_unit", False),
                Column("oi_unit", _STR, "contracts | base | usd", False),
                Column("oi_base", _F64, "one-sided OI in base units, when known"),
                Column("oi_usd", _F64, "one-sided OI as USD notional, when known"),
            ),
            ("venue", "instrument", "source", "ts"),
        ),
        TableSpec(
            "long_short",
            "Long/short ratios: accounts and top traders.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("kind", _STR, "global_account | top_account | top_position"),
                _k("period", _STR, "aggregation period (5m, 1h, ...)"),
                _TS,
                Column("long_frac", _F64, "share long, a fraction"),
                Column("short_frac", _F64, "share short, a fraction"),
                Column("long_short_ratio", _F64, "long_frac / short_frac"),
            ),
            ("venue", "instrument", "kind", "period", "ts"),
        ),
        TableSpec(
            "taker_volume",
            "Taker buy and sell volume per period.",
            (
                _VENUE,
                _INSTRUMENT,
                _k("period", _STR, "aggregation period (5m, 1h, ...)"),
                _TS,
                Column("buy_volume_base", _F64, "taker-buy volume, base units"),
                Column("sell_volume_base", _F64, "taker-sell volume, base units"),
                Column("buy_sell_ratio", _F64, "buy / sell"),
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
                Column("side", _STR, "long | short: the liquidated position's side", False),
                Column("px", _F64, "fill (or order) price"),
                Column("qty_base", _F64, "quantity in base units"),
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
                Column("expiry_ts", UTC_TS, "expiry time, UTC", False),
                Column("strike_px", _F64, "strike, USD", False),
                Column("option_type", _STR, "C | P", False),
                Column("contract_size_base", _F64, "base units per contract (1 on Deribit)"),
                Column("open_interest_contracts", _F64, "open interest, contracts"),
                Column("volume_contracts", _F64, "24h volume, contracts"),
                Column("volume_usd", _F64, "24h volume, USD"),
                Column("mark_price", _F64, "mark price in price_currency"),
                Column("price_currency", _STR, "currency of mark/bid/ask (BTC on Deribit)"),
                Column("bid_price", _F64, "best bid in price_currency"),
                Column("ask_price", _F64, "best ask in price_currency"),
                Column("mark_iv", _F64, "mark implied volatility, a fraction (0.65 = 65%)"),
                Column("underlying_px", _F64, "underlying (forward or index) price, USD"),
                Column("index_px", _F64, "index price, USD"),
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
            ),
            ("venue", "instrument", "ts", "trade_id"),
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
                Column("severity", _STR, "info | warning | critical"),
                Column("message", _STR, "what fired, in words"),
                Column("value", _F64, "the value that crossed the threshold"),
                Column("delivered_to", _STR, "notifiers that accepted it, comma-separated"),
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
                _k("event", _STR, "open | change | close | liquidated"),
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
                Column("entry_px", _F64, "average entry price"),
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
