"""Column specs of the market commands: headers, kinds and which columns go first on narrow screens.

``prio`` 0 is always shown; higher numbers are dropped first when the terminal is too narrow
(``--wide`` shows every column). Columns a spec does not name follow with a low priority.
"""

from __future__ import annotations

from perpscope.cli._render import Col, Kind

__all__ = [
    "ARBITRAGE",
    "BASIS",
    "CVD",
    "FUNDING_DIVERGENCE",
    "FUNDING_HISTORY",
    "FUNDING_SPREAD",
    "FUNDING_TABLE",
    "LONGSHORT",
    "OI_DIVERGENCE",
    "OI_SUMMARY",
]

_EXTREME_8H = 0.0005  # the playbook's extreme funding level per 8h (docs/methodology.md)
_OI_ALERT_24H = 0.15  # OI change over 24h that the playbook treats as an alert

FUNDING_TABLE: dict[str, list[Col]] = {
    "assets": [
        Col("asset", prio=0),
        Col("agg_rate_8h", "agg 8h", Kind.RATE, 0, _EXTREME_8H),
        Col("agg_annualized", "agg ann.", Kind.ANNUAL, 1),
        Col("spread_8h", "spread 8h", Kind.RATE, 1),
        Col("spread_annualized", "spread ann.", Kind.ANNUAL, 4),
        Col("high_venue", "high", prio=3),
        Col("high_rate_8h", "high 8h", Kind.RATE, 3, _EXTREME_8H),
        Col("low_venue", "low", prio=3),
        Col("low_rate_8h", "low 8h", Kind.RATE, 3, _EXTREME_8H),
        Col("n_venues", "venues", Kind.COUNT, 5),
        Col("weighting", prio=6),
        Col("weight_coverage", "covered", Kind.SHARE, 7),
        Col("high_instrument", "high instrument", prio=8),
        Col("low_instrument", "low instrument", prio=8),
    ],
    "venues": [
        Col("asset", prio=0),
        Col("venue", prio=0),
        Col("rate", "rate", Kind.RATE, 1),
        Col("interval_h", "every", Kind.HOURS, 2),
        Col("rate_8h", "rate 8h", Kind.RATE, 0, _EXTREME_8H),
        Col("annualized", "annual", Kind.ANNUAL, 1),
        Col("weight", "OI", Kind.USD, 3),
        Col("ts", "settled", Kind.TIME, 4),
        Col("instrument", prio=5),
    ],
}

FUNDING_HISTORY = [
    Col("venue", prio=0),
    Col("instrument", prio=0),
    Col("ts", "time", Kind.TIME, 0),
    Col("rate_8h", "rate 8h", Kind.RATE, 0, _EXTREME_8H),
    Col("annualized", "annual", Kind.ANNUAL, 2),
    Col("zscore", "z", Kind.SCORE, 1, 2.0),
    Col("percentile", "pctl", Kind.PCTL, 2),
    Col("accel_level", "accel", prio=3),
    Col("cum_rate", "cum", Kind.RATE, 4),
    Col("rate", "rate", Kind.RATE, 5),
    Col("interval_h", "every", Kind.HOURS, 5),
    Col("change_8h", "chg 8h", Kind.RATE, 6),
    Col("parabolic", "parabolic", Kind.ALERT, 6),
]

ARBITRAGE = [
    Col("asset", prio=0),
    Col("short_venue", "short", prio=0),
    Col("long_venue", "long", prio=0),
    Col("spread_8h", "spread 8h", Kind.RATE, 0),
    Col("carry_annualized", "carry ann.", Kind.ANNUAL, 0),
    Col("short_rate_8h", "short 8h", Kind.RATE, 2),
    Col("long_rate_8h", "long 8h", Kind.RATE, 2),
    Col("alert", "alert", Kind.ALERT, 1),
    Col("short_instrument", "short instrument", prio=6),
    Col("long_instrument", "long instrument", prio=6),
]

FUNDING_SPREAD: dict[str, list[Col]] = {
    "summary": [
        Col("asset", prio=0),
        Col("year", prio=0),
        Col("periods", "periods", Kind.COUNT, 3),
        Col("mean_spread_8h", "mean 8h", Kind.RATE, 0),
        Col("mean_abs_spread_8h", "mean |8h|", Kind.RATE, 1),
        Col("std_spread_8h", "std 8h", Kind.RATE, 4),
        Col("min_spread_8h", "min 8h", Kind.RATE, 2),
        Col("max_spread_8h", "max 8h", Kind.RATE, 2),
        Col("share_at_alert", "at alert", Kind.SHARE, 1),
        Col("correlation", "corr", Kind.RATIO, 5),
    ],
}

FUNDING_DIVERGENCE = [
    Col("venue", prio=0),
    Col("instrument", prio=0),
    Col("ts", "time", Kind.TIME, 0),
    Col("close_px", "close", Kind.PRICE, 1),
    Col("funding_mean_8h", "fund 8h", Kind.RATE, 1),
    Col("prior_ts", "prior high", Kind.TIME, 3),
    Col("prior_close_px", "prior close", Kind.PRICE, 3),
    Col("prior_funding_mean_8h", "prior fund", Kind.RATE, 2),
    Col("divergence", prio=0),
]

OI_SUMMARY: dict[str, list[Col]] = {
    "assets": [
        Col("asset", prio=0),
        Col("oi_usd", "total OI", Kind.USD, 0),
        Col("oi_change_4h", "chg 4h", Kind.CHANGE, 0, _OI_ALERT_24H / 2),
        Col("oi_change_24h", "chg 24h", Kind.CHANGE, 0, _OI_ALERT_24H),
        Col("n_venues", "venues", Kind.COUNT, 1),
        Col("top_venue", "largest", prio=2),
        Col("top_share", "share", Kind.SHARE, 2),
    ],
    "venues": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("oi_usd", "OI", Kind.USD, 0),
        Col("oi_change_4h", "chg 4h", Kind.CHANGE, 1, _OI_ALERT_24H / 2),
        Col("oi_change_24h", "chg 24h", Kind.CHANGE, 0, _OI_ALERT_24H),
        Col("price_change_24h", "px 24h", Kind.CHANGE, 2),
        Col("quadrant", kind=Kind.LABEL, prio=1),
        Col("spike", "spike", Kind.ALERT, 2),
        Col("alert_24h", "alert", Kind.ALERT, 2),
        Col("share", "share", Kind.SHARE, 3),
        Col("oi_percentile", "pctl", Kind.PCTL, 4),
        Col("roc_ratio", "24h/7d", Kind.RATIO, 5),
        Col("ts", "time", Kind.TIME, 6),
        Col("roc_avg_7d", "avg 7d", Kind.CHANGE, 7),
        Col("wave", "wave", Kind.FLAG, 7),
        Col("share_change", "share chg", Kind.CHANGE, 7),
        Col("hhi", "HHI", Kind.RATIO, 8),
        Col("hhi_change", "HHI chg", Kind.RATIO, 8),
        Col("migration", "migration", Kind.FLAG, 8),
        Col("reading", prio=9),
    ],
}

OI_DIVERGENCE: dict[str, list[Col]] = {
    "divergences": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("ts", "time", Kind.TIME, 0),
        Col("price_change_w", "px chg", Kind.CHANGE, 1),
        Col("oi_change_w", "OI chg", Kind.CHANGE, 1),
        Col("divergence_ratio", "ratio", Kind.RATIO, 2),
        Col("oi_divergence", "divergence", prio=0),
        Col("oi_divergence_grade", "grade", prio=0),
        Col("close_px", "close", Kind.PRICE, 3),
        Col("oi_usd", "OI", Kind.USD, 3),
    ],
    "market_wide": [
        Col("period", "time", Kind.TIME, 0),
        Col("n_assets", "assets", Kind.COUNT, 0),
        Col("bearish_assets", "bearish", prio=0),
        Col("bullish_assets", "bullish", prio=0),
        Col("market_wide", "market-wide", prio=0),
    ],
}

BASIS: dict[str, list[Col]] = {
    "perps": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("premium_spot", "prem spot", Kind.RATE, 2),
        Col("premium_spot_annualized", "spot ann.", Kind.ANNUAL, 0),
        Col("premium_index_annualized", "index ann.", Kind.ANNUAL, 3),
        Col("mean_rate_8h", "fund 8h", Kind.RATE, 2),
        Col("carry_annualized", "carry ann.", Kind.ANNUAL, 1),
        Col("status", prio=0),
        Col("perp_px", "perp", Kind.PRICE, 4),
        Col("spot_px", "spot", Kind.PRICE, 4),
        Col("index_px", "index", Kind.PRICE, 5),
        Col("premium_index", "prem index", Kind.RATE, 5),
        Col("ts", "time", Kind.TIME, 6),
    ],
}

CVD: dict[str, list[Col]] = {
    "cvd": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("market", prio=1),
        Col("ts", "time", Kind.TIME, 0),
        Col("delta_base", "delta", Kind.FLOW, 0),
        Col("cvd_base", "CVD", Kind.FLOW, 0),
    ],
    "divergences": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("market", prio=2),
        Col("ts", "time", Kind.TIME, 0),
        Col("cdiv_divergence", "divergence", prio=0),
        Col("close_px", "close", Kind.PRICE, 1),
        Col("cvd_base", "CVD", Kind.FLOW, 1),
        Col("cdiv_prior_ts", "prior time", Kind.TIME, 3),
        Col("cdiv_prior_price", "prior px", Kind.PRICE, 2),
        Col("cdiv_prior_value", "prior CVD", Kind.FLOW, 2),
        Col("cdiv_new_high", "new high", Kind.FLAG, 4),
        Col("cdiv_new_low", "new low", Kind.FLAG, 4),
        Col("delta_base", "delta", Kind.FLOW, 5),
    ],
}

LONGSHORT: dict[str, list[Col]] = {
    "crowd_vs_top": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("period", prio=2),
        Col("global_account", "global", Kind.RATIO, 0),
        Col("top_account", "top acct", Kind.RATIO, 1),
        Col("top_position", "top pos", Kind.RATIO, 1),
        Col("top_minus_global", "top-global", Kind.RATIO, 2),
        Col("lean", prio=0),
        Col("ts", "time", Kind.TIME, 3),
    ],
    "extremes": [
        Col("venue", prio=0),
        Col("instrument", prio=0),
        Col("period", prio=2),
        Col("kind", prio=1),
        Col("long_short_ratio", "L/S", Kind.RATIO, 0),
        Col("ls_percentile", "pctl", Kind.PCTL, 0),
        Col("extreme", prio=0),
        Col("ts", "time", Kind.TIME, 3),
    ],
}
