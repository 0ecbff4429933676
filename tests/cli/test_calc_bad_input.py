"""Hostile input to ``perpscope calc ...``: one clear line on stderr and exit 2, never a traceback.

Each finding of issue #22 ("Calculators") has a regression test, then each class of bad number
(NaN, infinity, zero, negative, huge leverage, huge sizes) is tried on every numeric argument of
every calculator service (the CLI maps their ``UsageError`` to exit 2) and, per command, through
the real CLI; hypothesis fuzzes both. A run either succeeds with finite numbers in its JSON or
exits 2 with one ``error:`` line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from perpscope.cli.main import run
from perpscope.errors import UsageError
from perpscope.services import calc
from tests.conftest import json_data


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    capsys.readouterr()
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def _refused(res: Outcome, fragment: str = "") -> str:
    """Assert one ``error:`` line on stderr, nothing on stdout, exit 2; return the line."""
    assert "Traceback" not in res.err
    assert res.code == 2, (res.code, res.err, res.out[:300])
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    line = lines[0]
    if line.startswith("{"):  # with --format json the error is a JSON object (docs/cli.md)
        err = json.loads(line)
        assert err["exit_code"] == 2, err
        line = "error: " + err["error"]
    assert line.startswith("error:"), line
    assert fragment in line, line
    return line


def _finite_json(value: Any) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), value
    elif isinstance(value, list):
        for v in value:
            _finite_json(v)
    elif isinstance(value, dict):
        for v in value.values():
            _finite_json(v)


def _accepted(res: Outcome) -> dict[str, Any]:
    assert "Traceback" not in res.err
    assert res.code == 0, res.err
    assert "NaN" not in res.out
    assert "Infinity" not in res.out
    doc = json_data(res.out)
    _finite_json(doc)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERPSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    (tmp_path / "absent.toml").write_text("", encoding="utf-8")


# ------------------------------------------------------------------ the findings of issue #22

LIQ_INVERSE = ["calc", "liq", "--venue", "binance", "--side", "long", "--entry", "20000"]
LIQ_INVERSE += ["--qty", "10", "--leverage", "20", "--inverse", "--mmr", "0.004"]
FUNDING = ["calc", "funding", "--notional", "100000", "--interval-h", "8", "--days", "7"]


def test_inverse_contract_size_zero_is_refused_not_read_as_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for bad in ("0", "-100"):
        res = _run(capsys, *LIQ_INVERSE, "--contract-size", bad, "--format", "json")
        _refused(res, "contract size must be a positive number")
    # A real contract size still works: 10 x 100 USD at 20,000, 20x, MMR 0.4 % (tests/risk).
    ok = _accepted(_run(capsys, *LIQ_INVERSE, "--contract-size", "100", "--format", "json"))
    assert ok["liquidation_px"] == pytest.approx(10 * 1.004 / (0.0025 / 100 + 10 / 20_000))


@pytest.mark.parametrize(
    ("rate", "fragment"),
    [
        ("5", "--rate 5 would be 500% per interval"),
        ("0.05", "write 0.05% if you mean percent"),
        ("-0.3", "would be -30% per interval"),
        ("5%", "beyond any venue's funding cap"),
        ("0.05x", "takes a rate per interval such as 0.0005 or 0.05%"),
    ],
)
def test_funding_rate_that_reads_as_a_percent_is_refused(
    capsys: pytest.CaptureFixture[str], rate: str, fragment: str
) -> None:
    _refused(_run(capsys, *FUNDING, "--rate", rate), fragment)
    basis = ["calc", "basis", "--spot", "100000", "--leverage", "5", "--rate", rate]
    _refused(_run(capsys, *basis), fragment)


def test_funding_rate_takes_an_explicit_percent(capsys: pytest.CaptureFixture[str]) -> None:
    # 0.05% = 0.0005 per 8h on 100,000: -50 per settlement, 21 settlements in 7 days (playbook).
    doc = _accepted(_run(capsys, *FUNDING, "--rate", "0.05%", "--format", "json"))
    assert doc["rate"] == pytest.approx(0.0005)
    assert (doc["payment_per_period_usd"], doc["total_usd"]) == pytest.approx((-50, -1_050))
    assert doc == _accepted(_run(capsys, *FUNDING, "--rate", "0.0005", "--format", "json"))
    neg = _accepted(_run(capsys, *FUNDING, "--rate", "-0.01%", "--format", "json"))
    assert neg["payment_per_period_usd"] == pytest.approx(10.0)  # a long receives at -0.01 %


KELLY = ["calc", "kelly", "--win-rate", "0.6", "--payoff", "1.2", "--equity", "10000"]


def test_kelly_multiple_above_full_kelly_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    _refused(_run(capsys, *KELLY, "--multiple", "10"), "Kelly multiple must be at most 1")
    _refused(_run(capsys, *KELLY, "--multiple", "1.01"), "at most 1 (full Kelly)")
    full = _accepted(_run(capsys, *KELLY, "--multiple", "1", "--format", "json"))
    assert full["risk_fraction"] == pytest.approx(0.6 - 0.4 / 1.2)


def test_kelly_risk_is_capped_at_the_playbooks_risk_per_trade_with_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Half Kelly at W 0.6, R 1.2: (0.6 - 0.4/1.2)/2 = 13.33 % of equity, above the playbook's
    # "about 1-2% per trade": the recommendation is 2 % ($200 of $10,000) and a warning says so.
    doc = _accepted(_run(capsys, *KELLY, "--format", "json"))
    assert doc["risk_pct"] == pytest.approx(100 * (0.6 - 0.4 / 1.2) / 2)
    assert (doc["max_risk_pct"], doc["recommended_risk_pct"]) == (2.0, 2.0)
    assert doc["recommended_risk_usd"] == pytest.approx(200.0)
    assert "above the 2% maximum per trade" in doc["warning"]
    table = _run(capsys, *KELLY)
    assert table.code == 0
    assert "above the 2% maximum per trade" in table.err
    loose = _accepted(_run(capsys, *KELLY, "--max-risk-pct", "20", "--format", "json"))
    assert loose["recommended_risk_pct"] == pytest.approx(loose["risk_pct"])
    assert loose["warning"] is None
    no_edge = _accepted(
        _run(capsys, "calc", "kelly", "--win-rate", "0.4", "--payoff", "1", "--format", "json")
    )
    assert (no_edge["recommended_risk_pct"], no_edge["warning"]) == (0.0, None)


SIZE = ["calc", "size", "--equity", "10000", "--risk-pct", "1.5", "--entry", "50000"]


def test_size_whose_margin_exceeds_the_equity_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Stop 0.0001 from entry: 150 / 0.0001 = 1.5M BTC, 75B of notional on 10,000 of equity.
    res = _run(capsys, *SIZE, "--stop", "49999.9999")
    line = _refused(res, "of margin at 1x, more than the equity of 10,000.00")
    assert "75,000,00" in line
    # 1.5 % at a 1 % stop is 150 % of equity as notional: 1x refused, 2x fits (margin 7,500).
    _refused(_run(capsys, *SIZE, "--stop", "49500"), "more than the equity")
    doc = _accepted(_run(capsys, *SIZE, "--stop", "49500", "--leverage", "2", "--format", "json"))
    assert doc["margin_usd"] == pytest.approx(150 / 500 * 50_000 / 2)


@pytest.mark.parametrize("leverage", ["126", "1000", "1e9"])
def test_leverage_above_any_venue_maximum_is_refused(
    capsys: pytest.CaptureFixture[str], leverage: str
) -> None:
    size = [*SIZE, "--stop", "49000", "--leverage", leverage]
    _refused(_run(capsys, *size), "above 125x, the highest maximum of any implemented venue")
    liq = ["calc", "liq", "--venue", "bybit", "--side", "long", "--entry", "20000", "--qty", "1"]
    _refused(_run(capsys, *liq, "--leverage", leverage, "--mmr", "0.005"), "above 125x")
    basis = ["calc", "basis", "--spot", "1000", "--rate", "0.0001", "--leverage", leverage]
    _refused(_run(capsys, *basis), "above 125x")


def test_trades_file_that_is_not_text_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    binary = tmp_path / "ls"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00" * 64)
    res = _run(capsys, "calc", "kelly", "--trades-file", str(binary))
    _refused(res, "is not a text file (not UTF-8)")
    _refused(_run(capsys, "calc", "kelly", "--trades-file", str(tmp_path)), "cannot read")
    _refused(
        _run(capsys, "calc", "kelly", "--trades-file", str(tmp_path / "nope.txt")), "cannot read"
    )


def test_user_text_in_an_error_is_printed_verbatim_not_as_markup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _refused(_run(capsys, *FUNDING, "--rate", "[/x]"))
    assert "[/x]" in line


# ------------------------------------------------------------- classes of bad numbers


@dataclass(frozen=True)
class Opt:
    """A numeric option, its valid value, and whether zero or a negative value is meaningful."""

    name: str
    value: str
    zero_ok: bool = False
    negative_ok: bool = False


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    options: tuple[Opt, ...]
    flags: tuple[str, ...] = field(default=())

    def args(self, override: dict[str, str] | None = None) -> list[str]:
        values = {o.name: o.value for o in self.options} | (override or {})
        out = ["calc", *self.words, *self.flags]
        for name, value in values.items():
            out += [name, value]
        return [*out, "--format", "json"]


COMMANDS = {
    "liq": Command(
        ("liq", "--venue", "binance", "--side", "long"),
        (
            Opt("--entry", "20000"),
            Opt("--qty", "1"),
            Opt("--leverage", "10"),
            Opt("--mmr", "0.004", zero_ok=True),
            Opt("--maint-amount", "0", zero_ok=True, negative_ok=True),
        ),
    ),
    "liq-cross": Command(
        ("liq", "--venue", "binance", "--side", "short", "--margin-mode", "cross"),
        (
            Opt("--entry", "20000"),
            Opt("--qty", "1"),
            Opt("--leverage", "10"),
            Opt("--mmr", "0.004", zero_ok=True),
            Opt("--wallet", "5000"),
            Opt("--other-mm", "100", zero_ok=True),
            Opt("--other-upnl", "-200", zero_ok=True, negative_ok=True),
        ),
    ),
    "liq-inverse": Command(
        ("liq", "--venue", "binance", "--side", "long"),
        (
            Opt("--entry", "20000"),
            Opt("--qty", "10"),
            Opt("--leverage", "20"),
            Opt("--mmr", "0.004", zero_ok=True),
            Opt("--contract-size", "100"),
        ),
        flags=("--inverse",),
    ),
    "liq-okx": Command(
        ("liq", "--venue", "okx", "--side", "long"),
        (
            Opt("--entry", "20000"),
            Opt("--qty", "1"),
            Opt("--leverage", "10"),
            Opt("--mmr", "0.004", zero_ok=True),
            Opt("--fee-rate", "0.0005", zero_ok=True),
        ),
    ),
    "size": Command(
        ("size",),
        (
            Opt("--equity", "10000"),
            Opt("--risk-pct", "1"),
            Opt("--entry", "100"),
            Opt("--stop", "95"),
            Opt("--leverage", "5"),
            Opt("--lot-size", "0.01"),
            Opt("--mmr", "0.005", zero_ok=True),
        ),
    ),
    "size-atr": Command(
        ("size", "--side", "short"),
        (
            Opt("--equity", "10000"),
            Opt("--risk-pct", "1"),
            Opt("--entry", "100"),
            Opt("--atr", "2"),
            Opt("--atr-mult", "1.5"),
            Opt("--leverage", "3"),
        ),
    ),
    "targets": Command(
        ("targets", "--targets", "105,110,120"),
        (Opt("--entry", "100"), Opt("--stop", "95"), Opt("--qty", "2"), Opt("--rest-exit", "104")),
        flags=(),
    ),
    "funding": Command(
        ("funding",),
        (
            Opt("--notional", "100000"),
            Opt("--rate", "0.0005", zero_ok=True, negative_ok=True),
            Opt("--interval-h", "8"),
            Opt("--days", "7", zero_ok=True),
        ),
    ),
    "kelly": Command(
        ("kelly",),
        (
            Opt("--win-rate", "0.6", zero_ok=True),
            Opt("--payoff", "1.2"),
            Opt("--multiple", "0.5"),
            Opt("--equity", "10000"),
            Opt("--max-risk-pct", "2"),
        ),
    ),
    "basis": Command(
        ("basis",),
        (
            Opt("--spot", "100000"),
            Opt("--leverage", "5"),
            Opt("--rate", "0.0005", zero_ok=True, negative_ok=True),
            Opt("--interval-h", "8"),
            Opt("--buffer-frac", "0.2", zero_ok=True),
            Opt("--spot-px", "65000"),
            Opt("--perp-px", "65020"),
            Opt("--mark", "66000"),
        ),
    ),
    "bucket": Command(
        ("bucket", "--risks", "750,450"),
        (
            Opt("--correlation", "0.5", zero_ok=True, negative_ok=True),
            Opt("--max-risk-usd", "1000"),
        ),
    ),
}

ALL_OPTIONS = [
    pytest.param(cmd, opt, id=f"{cmd}{opt.name}")
    for cmd, spec in COMMANDS.items()
    for opt in spec.options
]
# One option per command for the runs through the CLI (each run rebuilds the whole typer app,
# about 0.1-0.5 s); the service-level tests below try every option.
FIRST_OPTIONS = [pytest.param(cmd, spec.options[0], id=cmd) for cmd, spec in COMMANDS.items()]


def test_every_base_command_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    for spec in COMMANDS.values():
        _accepted(_run(capsys, *spec.args()))


@pytest.mark.parametrize(("cmd", "opt"), FIRST_OPTIONS)
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("nan", "nan"),
        ("inf", "inf"),
        ("-1e999", "inf"),
        ("0", "zero"),
        ("-0.5", "negative"),
        ("1e308", "huge"),
    ],
)
def test_each_class_of_bad_number_through_the_cli(
    capsys: pytest.CaptureFixture[str], cmd: str, opt: Opt, value: str, kind: str
) -> None:
    res = _run(capsys, *COMMANDS[cmd].args({opt.name: value}))
    ok = (kind == "zero" and opt.zero_ok) or (kind == "negative" and opt.negative_ok)
    if kind == "huge" and res.code == 0:
        ok = True
    if ok:
        _accepted(res)
    else:
        _refused(res)


@pytest.mark.parametrize("cmd", [c for c, s in COMMANDS.items() if "--leverage" in str(s)])
@pytest.mark.parametrize("value", ["126", "1e308", "0.5"])
def test_huge_or_fractional_leverage_is_refused(
    capsys: pytest.CaptureFixture[str], cmd: str, value: str
) -> None:
    _refused(_run(capsys, *COMMANDS[cmd].args({"--leverage": value})), "leverage")


def test_huge_risks_in_a_bucket_overflow_into_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    res = _run(capsys, "calc", "bucket", "--risks", "1.7e308,1.7e308", "--format", "json")
    _refused(res, "too large")


# ------------------------------------------- every option of every calculator, at the service


def _liq(**kw: Any) -> dict[str, Any]:
    return calc.liquidation(None, calc.LiqRequest(**kw))


def _basis(**kw: Any) -> dict[str, Any]:
    return calc.basis_plan(None, **kw)


# name -> (service call, valid keyword arguments, {numeric argument: "z" zero ok, "n" negative ok})
SERVICES: dict[str, tuple[Any, dict[str, Any], dict[str, str]]] = {
    "liq": (
        _liq,
        {"venue": "binance", "side": "long", "entry_px": 2e4, "qty": 1.0, "leverage": 10.0,
         "mmr": 0.004, "maint_amount": 0.0},
        {"entry_px": "", "qty": "", "leverage": "", "mmr": "z", "maint_amount": "zn"},
    ),
    "liq-cross": (
        _liq,
        {"venue": "bybit", "side": "short", "entry_px": 2e4, "qty": 1.0, "leverage": 10.0,
         "mmr": 0.004, "margin_mode": "cross", "wallet": 5000.0, "other_mm": 100.0,
         "other_upnl": -200.0},
        {"entry_px": "", "qty": "", "leverage": "", "mmr": "z", "wallet": "", "other_mm": "z",
         "other_upnl": "zn"},
    ),
    "liq-inverse": (
        _liq,
        {"venue": "binance", "side": "long", "entry_px": 2e4, "qty": 10.0, "leverage": 20.0,
         "mmr": 0.004, "inverse": True, "contract_size": 100.0},
        {"entry_px": "", "qty": "", "leverage": "", "mmr": "z", "contract_size": ""},
    ),
    "liq-okx": (
        _liq,
        {"venue": "okx", "side": "long", "entry_px": 2e4, "qty": 1.0, "leverage": 10.0,
         "mmr": 0.004, "fee_rate": 0.0005},
        {"entry_px": "", "qty": "", "leverage": "", "mmr": "z", "fee_rate": "z"},
    ),
    "size": (
        calc.size,
        {"equity_usd": 1e4, "risk_pct": 1.0, "entry_px": 100.0, "stop_px": 95.0, "leverage": 5.0,
         "lot_size": 0.01, "mmr": 0.005, "venue": "binance"},
        {"equity_usd": "", "risk_pct": "", "entry_px": "", "stop_px": "", "leverage": "",
         "lot_size": "", "mmr": "z"},
    ),
    "size-atr": (
        calc.size,
        {"equity_usd": 1e4, "risk_pct": 1.0, "entry_px": 100.0, "atr": 2.0, "atr_mult": 1.5,
         "side": "short", "leverage": 3.0},
        {"equity_usd": "", "risk_pct": "", "entry_px": "", "atr": "", "atr_mult": "",
         "leverage": ""},
    ),
    "targets": (
        calc.targets,
        {"entry_px": 100.0, "stop_px": 95.0, "targets_px": [105.0, 110.0, 120.0], "qty": 2.0,
         "rest_exit_px": 104.0, "hit": 2},
        {"entry_px": "", "stop_px": "", "qty": "", "rest_exit_px": ""},
    ),
    "funding": (
        calc.funding,
        {"side": "long", "notional_usd": 1e5, "rate": 0.0005, "interval_h": 8.0, "days": 7.0},
        {"notional_usd": "", "rate": "zn", "interval_h": "", "days": "z"},
    ),
    "kelly": (
        calc.kelly_sizing,
        {"win_rate": 0.6, "payoff": 1.2, "multiple": 0.5, "equity_usd": 1e4, "max_risk_pct": 2.0},
        {"win_rate": "z", "payoff": "", "multiple": "", "equity_usd": "", "max_risk_pct": ""},
    ),
    "kelly-trades": (
        calc.kelly_sizing,
        {"trades_r": [1.5, -1.0, 2.0, -1.0, 0.0]},
        {},
    ),
    "basis": (
        _basis,
        {"spot_usd": 1e5, "leverage": 5.0, "rate": 0.0005, "interval_h": 8.0, "buffer_frac": 0.2,
         "spot_px": 65000.0, "perp_px": 65020.0, "mark_px": 66000.0},
        {"spot_usd": "", "leverage": "", "rate": "zn", "interval_h": "", "buffer_frac": "z",
         "spot_px": "", "perp_px": "", "mark_px": ""},
    ),
    "bucket": (
        calc.bucket,
        {"risks_usd": [750.0, 450.0], "correlation": 0.5, "max_risk_usd": 1000.0},
        {"correlation": "zn", "max_risk_usd": ""},
    ),
}  # fmt: skip

SERVICE_ARGS = [
    pytest.param(name, arg, flags, id=f"{name}-{arg}")
    for name, (_, _, numeric) in SERVICES.items()
    for arg, flags in numeric.items()
]


def _call(name: str, override: dict[str, Any]) -> dict[str, Any] | str:
    """The record, or the usage error's message (asserted to be one line)."""
    fn, base, _ = SERVICES[name]
    try:
        record: dict[str, Any] = fn(**(base | override))
    except UsageError as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        return message
    _finite_json(record)
    return record


def test_every_service_base_call_is_valid() -> None:
    for name in SERVICES:
        assert isinstance(_call(name, {}), dict), name


@pytest.mark.parametrize(("name", "arg", "flags"), SERVICE_ARGS)
def test_nan_and_infinity_are_refused_by_every_argument(name: str, arg: str, flags: str) -> None:
    for value in (math.nan, math.inf, -math.inf):
        assert isinstance(_call(name, {arg: value}), str), (arg, value)


@pytest.mark.parametrize(("name", "arg", "flags"), SERVICE_ARGS)
def test_zero_is_refused_where_it_means_nothing(name: str, arg: str, flags: str) -> None:
    out = _call(name, {arg: 0.0})
    assert isinstance(out, dict if "z" in flags else str), out


@pytest.mark.parametrize(("name", "arg", "flags"), SERVICE_ARGS)
def test_negative_is_refused_where_it_means_nothing(name: str, arg: str, flags: str) -> None:
    out = _call(name, {arg: -0.0001 if arg == "rate" else -0.5})
    assert isinstance(out, dict if "n" in flags else str), out


@pytest.mark.parametrize(("name", "arg", "flags"), SERVICE_ARGS)
def test_huge_values_give_finite_figures_or_one_error_line(name: str, arg: str, flags: str) -> None:
    del flags
    for value in (1e15, 1e300, 1.7e308, -1.7e308, 5e-324):
        _call(name, {arg: value})  # asserts: a finite record, or one line


@pytest.mark.parametrize("leverage", [126.0, 1e6, 1e308, 0.5])
@pytest.mark.parametrize("name", [n for n, s in SERVICES.items() if "leverage" in s[1]])
def test_huge_or_fractional_leverage_is_refused_by_every_service(
    name: str, leverage: float
) -> None:
    out = _call(name, {"leverage": leverage})
    assert isinstance(out, str)
    assert "leverage" in out


def test_non_finite_trade_results_and_risks_are_refused() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        assert isinstance(_call("kelly-trades", {"trades_r": [1.0, -1.0, bad]}), str)
        assert isinstance(_call("bucket", {"risks_usd": [750.0, bad]}), str)
        assert isinstance(_call("targets", {"targets_px": [105.0, bad]}), str)
    assert isinstance(_call("bucket", {"risks_usd": [1.7e308, 1.7e308]}), str)


HOSTILE_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e308, -1e308, 5e-324, 1e-308, 126.0, 0.05, 1e15]),
)


@settings(max_examples=400)
@given(name=st.sampled_from(sorted(SERVICES)), data=st.data())
def test_fuzz_every_calculator_service_returns_finite_figures_or_one_error_line(
    name: str, data: st.DataObject
) -> None:
    numeric = sorted(SERVICES[name][2])
    assume(numeric)
    args = data.draw(st.lists(st.sampled_from(numeric), min_size=1, max_size=3, unique=True))
    override = {a: data.draw(HOSTILE_FLOATS, label=a) for a in args}
    out = _call(name, override)
    if any(not math.isfinite(v) for v in override.values()):
        assert isinstance(out, str), override


# ----------------------------------------------------------------- fuzz through the CLI

HOSTILE = ["0", "-1", "nan", "inf", "-inf", "1e308", "5e-324", "1e6", "abc", "", "[/x]"]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cmd=st.sampled_from(sorted(COMMANDS)),
    picks=st.lists(st.tuples(st.integers(0, 20), st.sampled_from(HOSTILE)), max_size=3),
)
def test_fuzz_every_calculator_exits_0_with_finite_output_or_2_with_one_line(
    capsys: pytest.CaptureFixture[str], cmd: str, picks: list[tuple[int, str]]
) -> None:
    spec = COMMANDS[cmd]
    override = {spec.options[i % len(spec.options)].name: v for i, v in picks}
    res = _run(capsys, *spec.args(override))
    if res.code == 0:
        _accepted(res)
        assert not ({"nan", "inf", "-inf"} & set(override.values())), override
    else:
        _refused(res)
