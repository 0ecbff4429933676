"""Rules as configured, and the engine's edges, cooldowns, restarts and outage counting.

States are built by hand: a one-row market state per step, with the value chosen to sit on each
side of the threshold.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from perpscope.alerts.engine import AlertEngine, format_value, matches
from perpscope.domain.alert_rules import BUILTINS, OUTAGE, parse_alerts, parse_duration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def funding_state(ts: datetime, *rates: float) -> pl.DataFrame:
    """Instrument rows of venues v0, v1, ... of BTC-USDT-PERP with these 8h funding rates."""
    return pl.DataFrame(
        {
            "level": ["instrument"] * len(rates),
            "asset": ["BTC"] * len(rates),
            "venue": [f"v{i}" for i in range(len(rates))],
            "instrument": ["BTC-USDT-PERP"] * len(rates),
            "ts": [ts] * len(rates),
            "funding_8h": list(rates),
            "price": [60_000.0] * len(rates),
        }
    )


def only(rule: str) -> list:  # type: ignore[type-arg]
    return [BUILTINS[rule]]


def test_the_builtins_carry_the_playbooks_thresholds() -> None:
    """Playbook lines 339-343: +-0.05%, +10% in 24h, more than 48h, within 2%, above 0.03%."""
    got = {r.name: (r.metric, r.op, r.value) for r in BUILTINS.values()}
    assert got["funding_extreme"] == ("funding_8h", "abs>=", 0.0005)
    assert got["oi_surge"] == ("oi_change_24h_total", ">", 0.10)
    assert got["oi_divergence"] == ("divergence_hours", ">", 48.0)
    assert got["liq_proximity"] == ("liq_cluster_distance", "<=", 0.02)
    assert got["funding_spread"] == ("funding_spread_8h", ">", 0.0003)
    # the playbook's five and the outage rule are on; the signals-engine rules are opt-in
    on = {r.name for r in BUILTINS.values() if r.enabled}
    assert on == {"funding_extreme", "oi_surge", "oi_divergence", "liq_proximity",
                  "funding_spread", OUTAGE}  # fmt: skip
    assert set(BUILTINS) - on == {"scenario_change", "new_setup"}


def test_config_overrides_a_builtin_and_adds_a_custom_rule() -> None:
    cfg = parse_alerts(
        {
            "notify": ["json://127.0.0.1:1/x"],
            "rules": {
                "funding_extreme": {"value": 0.001, "cooldown": "8h", "assets": ["btc"]},
                "oi_surge": {"enabled": False},
                "big_oi": {"metric": "oi_usd", "op": ">", "value": 5e9, "venues": ["Binance"],
                           "severity": "critical"},
            },
        }
    )  # fmt: skip
    f = cfg.rule("funding_extreme")
    assert (f.value, f.cooldown_s, f.assets, f.op) == (0.001, 8 * 3600, ("BTC",), "abs>=")
    assert not cfg.rule("oi_surge").enabled
    big = cfg.rule("big_oi")
    assert (big.metric, big.op, big.value, big.venues, big.severity, big.builtin) == (
        "oi_usd", ">", 5e9, ("binance",), "critical", False
    )  # fmt: skip
    assert [r.name for r in cfg.rules][: len(BUILTINS)] == list(BUILTINS)
    assert cfg.notify == ("json://127.0.0.1:1/x",)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"rules": {"x": {"metric": "oi_usd", "op": ">"}}}, "rules.x: a custom rule needs 'value'"),
        ({"rules": {"x": {"metric": "oi_usd", "op": "~", "value": 1}}}, "rules.x: unknown op '~'"),
        ({"rules": {"x": {"metric": "oi", "op": ">", "value": 1}}}, "rules.x: unknown metric 'oi'"),
        ({"rules": {"oi_surge": {"metric": "price"}}}, "rules.oi_surge: unknown key 'metric'"),
        ({"rules": {"oi_surge": {"value": float("nan")}}}, "value must be a finite number"),
        ({"rules": {"oi_surge": {"enabled": "yes"}}}, "enabled must be true or false"),
        ({"rules": {"oi_surge": {"severity": "loud"}}}, "severity must be one of"),
        ({"rules": {"oi_surge": {"assets": [1]}}}, "assets: must be a list of assets"),
        ({"rules": {"9lives": {"metric": "price", "op": ">", "value": 1}}}, "rules.9lives: a rule"),
        ({"rules": {"x": 3}}, "rules.x: must be a table"),
        ({"notify": "json://a/b", "colour": 1}, "colour: unknown key"),
        ({"notify": [""]}, "notify: must be a list of apprise URLs"),
    ],
)  # fmt: skip
def test_bad_rule_tables_name_the_rule_and_the_reason(data: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_alerts(data)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("4h", 14400), ("1.5d", 129600), (60, 60), ("0", 0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["-1h", "4 hours", "", True, "h"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_rule_fires_on_the_edge_not_while_the_condition_holds() -> None:
    engine = AlertEngine(only("funding_extreme"))
    fired = [len(engine.evaluate(funding_state(T0 + k * H, r)))
             for k, r in enumerate([0.0004, 0.0006, 0.0007, 0.0004])]  # fmt: skip
    assert fired == [0, 1, 0, 0]


def test_the_threshold_itself_counts_for_abs_ge_and_either_side_fires() -> None:
    engine = AlertEngine(only("funding_extreme"))
    events = engine.evaluate(funding_state(T0, 0.0005, -0.0005, 0.000499, -0.000499))
    assert sorted(e.venue for e in events) == ["v0", "v1"]
    assert {e.value for e in events} == {0.0005, -0.0005}


def test_cooldown_holds_back_a_second_crossing_until_it_has_passed() -> None:
    """Crossings at 0h, 10h (inside 24h: held) and 25h (after 24h from the first: fires)."""
    engine = AlertEngine(only("funding_extreme"))
    times = {0: 0.0006, 1: 0.0001, 10: 0.0006, 11: 0.0001, 24: 0.0001, 25: 0.0006}
    fired = [k for k, r in times.items() if engine.evaluate(funding_state(T0 + k * H, r))]
    assert fired == [0, 25]


def test_a_restarted_engine_fires_nothing_it_already_fired() -> None:
    """Replaying the same states with the stored last firing sends nothing."""
    states = [funding_state(T0 + k * H, r) for k, r in enumerate([0.0006, 0.0001, 0.0007])]
    first = AlertEngine(only("funding_extreme"))
    sent = [e for s in states for e in first.evaluate(s)]
    assert [e.ts for e in sent] == [T0]
    restarted = AlertEngine(only("funding_extreme"), {e.key[:3]: e.ts for e in sent})
    assert [e for s in states for e in restarted.evaluate(s)] == []


def test_event_carries_its_evidence_and_a_formatted_message() -> None:
    (event,) = AlertEngine(only("funding_extreme")).evaluate(funding_state(T0, 0.000612))
    assert event.evidence == {"funding_8h": 0.000612, "price": 60_000.0, "threshold": 0.0005,
                              "op": "abs>="}  # fmt: skip
    assert event.message == "v0 BTC-USDT-PERP funding +0.0612% per 8h, beyond +-0.0500%"
    assert event.key == ("funding_extreme", "v0", "BTC-USDT-PERP", T0)


def test_assets_and_venues_filters() -> None:
    cfg = parse_alerts({"rules": {"funding_extreme": {"venues": ["v1"]}}})
    state = funding_state(T0, 0.001, 0.001)
    assert matches(cfg.rule("funding_extreme"), state)["venue"].to_list() == ["v1"]
    cfg = parse_alerts({"rules": {"funding_extreme": {"assets": ["ETH"]}}})
    assert matches(cfg.rule("funding_extreme"), state).is_empty()


def test_missing_and_nan_values_never_fire() -> None:
    state = funding_state(T0, float("nan"), 0.001).with_columns(
        pl.when(pl.col("venue") == "v1")
        .then(None)
        .otherwise(pl.col("funding_8h"))
        .alias("funding_8h")
    )
    assert AlertEngine(only("funding_extreme")).evaluate(state) == []


def test_outage_fires_once_per_outage_and_rearms_after_a_success() -> None:
    engine = AlertEngine(BUILTINS.values())
    seq = ["down", "down", None, "down", "down"]
    fired = [engine.collection("bybit", T0 + k * 2 * H, e) for k, e in enumerate(seq)]
    assert [f is not None for f in fired] == [True, False, False, True, False]
    assert fired[0] is not None
    assert fired[0].rule == OUTAGE
    assert fired[0].severity == "critical"
    assert fired[0].message == "bybit collection failed (1 in a row): down"
    assert engine.collection("binance", T0, None) is None


def test_outage_waits_for_the_configured_number_of_failures_and_its_cooldown() -> None:
    cfg = parse_alerts({"rules": {OUTAGE: {"value": 2, "cooldown": "1h"}}})
    engine = AlertEngine(cfg.rules)
    assert engine.collection("okx", T0, "503") is None
    first = engine.collection("okx", T0 + 60 * timedelta(seconds=1), "503")
    assert first is not None
    assert first.value == 2.0
    engine.collection("okx", T0 + 2 * timedelta(minutes=1), None)
    engine.collection("okx", T0 + 3 * timedelta(minutes=1), "503")
    assert engine.collection("okx", T0 + 4 * timedelta(minutes=1), "503") is None  # cooldown
    engine.collection("okx", T0 + 5 * timedelta(minutes=1), None)
    engine.collection("okx", T0 + 2 * H, "503")
    assert engine.collection("okx", T0 + 2 * H + timedelta(minutes=1), "503") is not None


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [("funding_8h", 0.0005, "+0.0500%"), ("oi_change_24h_total", 0.1, "+10.0%"),
     ("oi_usd", 4.42e6, "$4.42M"), ("divergence_hours", 48.0, "48h"),
     ("price", 60292.77, "60,292.77"), ("liq_cluster_distance", 0.02, "+2.0%")],
)  # fmt: skip
def test_values_print_as_a_trader_reads_them(metric: str, value: float, text: str) -> None:
    assert format_value(metric, value) == text
