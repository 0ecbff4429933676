"""The CLI of the foundation: one-line errors with exit codes, config, store info, export, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from perpscope.analytics.funding import annualized_rate
from perpscope.config import load_config
from perpscope.errors import ConfigError
from perpscope.services.demo import demo_store_path
from perpscope.store.lake import Lake


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _one_line_error(res) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    assert "Traceback" not in res.err
    return lines[0]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo store shared by the read-only tests of this module."""
    path = tmp_path_factory.mktemp("demo") / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "perpscope", "demo", "--store", str(path), "--seed", "11"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return path


def test_unknown_instrument_is_one_line_exit_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    f = _csv(tmp_path / "f.csv", "ts,rate\n2024-01-01,0.0001\n2024-01-01 08:00,0.0001\n")
    res = cli(
        "--store",
        str(tmp_path / "s"),
        "import",
        "funding",
        str(f),
        "--venue",
        "binance",
        "--instrument",
        "BTCUSDT",
    )
    assert res.code == 2
    assert "unknown instrument 'BTCUSDT'" in _one_line_error(res)


def test_unreadable_file_is_one_line_exit_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    res = cli(
        "--store",
        str(tmp_path / "s"),
        "import",
        "ohlcv",
        str(bad),
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT",
        "--timeframe",
        "1h",
    )
    assert res.code == 2
    assert "cannot read" in _one_line_error(res)


def test_bad_option_value_is_a_usage_error_exit_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    f = _csv(tmp_path / "f.csv", "ts,o,h,l,c\n2024-01-01,1,1,1,1\n")
    res = cli(
        "--store",
        str(tmp_path / "s"),
        "import",
        "ohlcv",
        str(f),
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT",
        "--timeframe",
        "1h",
        "--kind",
        "bogus",
    )
    assert res.code == 2
    line = _one_line_error(res)
    assert "'bogus' is not one of" in line
    assert "perpscope import ohlcv --help" in line


def test_missing_argument_and_unknown_command_are_one_line_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("sql")
    assert res.code == 2
    assert "Missing argument" in _one_line_error(res)
    res = cli("nosuchcommand")
    assert res.code == 2
    assert "No such command" in _one_line_error(res)
    res = cli("sql", "SELECT 1", "--max-rows", "0")
    assert res.code == 2
    assert "--max-rows" in _one_line_error(res)


def test_bad_rows_exit_2_with_line_numbers_and_write_nothing(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    f = _csv(tmp_path / "f.csv", "ts,rate\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,x\n")
    res = cli(
        "--store",
        str(tmp_path / "s"),
        "import",
        "funding",
        str(f),
        "--venue",
        "gate",
        "--instrument",
        "BTC-USDT-PERP",
        "--interval-h",
        "8",
    )
    assert res.code == 2  # bad input, like a bad option
    assert "line 3: rate is not a number" in _one_line_error(res)
    assert not Lake(tmp_path / "s").has_table("funding")


def test_unwritable_store_is_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    f = _csv(tmp_path / "f.csv", "ts,rate\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,0.0001\n")
    res = cli(
        "--store",
        str(blocker / "store"),
        "import",
        "funding",
        str(f),
        "--venue",
        "gate",
        "--instrument",
        "BTC-USDT-PERP",
    )
    assert res.code == 1
    assert "cannot write store" in _one_line_error(res)


def test_corrupt_store_is_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "s"
    f = _csv(tmp_path / "f.csv", "ts,rate\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,0.0001\n")
    assert (
        cli(
            "--store",
            str(store),
            "import",
            "funding",
            str(f),
            "--venue",
            "gate",
            "--instrument",
            "BTC-USDT-PERP",
        ).code
        == 0
    )
    (store / "funding" / "_delta_log" / "00000000000000000000.json").write_text("garbage")
    res = cli("--store", str(store), "sql", "SELECT * FROM funding")
    assert res.code == 1
    assert "unreadable" in _one_line_error(res)


def test_bad_config_file_exits_2(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[workbench]\nmax_rows = -5\n")
    res = cli("--config", str(cfg), "config", "show")
    assert res.code == 2
    assert "workbench.max_rows" in _one_line_error(res)
    cfg.write_text("[store\n")
    res = cli("--config", str(cfg), "config", "show")
    assert res.code == 2
    assert "not valid TOML" in _one_line_error(res)
    cfg.write_text("[stor]\npath = '/x'\n")
    assert cli("--config", str(cfg), "config", "show").code == 2


def test_config_precedence_option_over_env_over_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[store]\npath = '{tmp_path / 'from-file'}'\n[workbench]\nmax_rows = 5\n")
    loaded = load_config(cfg, environ={})
    assert loaded.store.path == tmp_path / "from-file"
    assert loaded.workbench.max_rows == 5
    env = load_config(cfg, environ={"PERPSCOPE_STORE": str(tmp_path / "from-env")})
    assert env.store.path == tmp_path / "from-env"
    res = cli(
        "--config",
        str(cfg),
        "--store",
        str(tmp_path / "from-opt"),
        "config",
        "show",
        "--format",
        "json",
    )
    assert res.json()["store.path"] == str(tmp_path / "from-opt")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", environ={})


@pytest.mark.parametrize(
    ("toml", "env", "error"),
    [
        ("[workbench]\nmax_rows = 0\n", {}, "workbench.max_rows: must be >= 1, not 0"),
        ("[workbench]\nmax_rows = 10000001\n", {}, "workbench.max_rows: must be <= 1e+07"),
        ("[workbench]\nmax_rows = 2.5\n", {}, "workbench.max_rows: 2.5 is not a whole number"),
        ("[workbench]\nmax_rows = true\n", {}, "workbench.max_rows: must be a number, not bool"),
        ("[workbench]\ntimeout_s = 0\n", {}, "workbench.timeout_s: must be > 0, not 0"),
        ("[workbench]\ntimeout_s = inf\n", {}, "workbench.timeout_s: must be a finite number"),
        ("[workbench]\ntimeout_s = 3600.5\n", {}, "workbench.timeout_s: must be <= 3600"),
        ("[workbench]\nmemory_limit = '1KB'\n", {}, "workbench.memory_limit: '1KB' is too small"),
        ("[store]\nvacuum_retention_h = -1\n", {}, "store.vacuum_retention_h: must be >= 0"),
        ("[store]\npaht = '/x'\n", {}, "store.paht: unknown key (keys: path, vacuum_retention_h)"),
        ("[stor]\npath = '/x'\n", {}, "stor: unknown section"),
        ("store = 3\n", {}, "store: [store] must be a table"),
        ("", {"PERPSCOPE_SQL_MAX_ROWS": "many"}, "workbench.max_rows: 'many' is not a number"),
    ],
)
def test_each_bad_config_value_is_named_with_its_reason(
    tmp_path: Path, toml: str, env: dict[str, str], error: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match="bad configuration") as info:
        load_config(cfg, environ=env)
    assert error in str(info.value)


def test_config_bounds_are_inclusive_and_environment_text_is_read_as_numbers(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[workbench]\nmax_rows = 10000000\ntimeout_s = 3600\n[store]\n"
                   "vacuum_retention_h = 0\npath = '~/s'\n")  # fmt: skip
    loaded = load_config(cfg, environ={})
    assert (loaded.workbench.max_rows, loaded.workbench.timeout_s) == (10_000_000, 3600.0)
    assert loaded.store.vacuum_retention_h == 0.0
    assert loaded.store.path == Path("~/s").expanduser()
    env = load_config(
        cfg, environ={"PERPSCOPE_SQL_MAX_ROWS": "7", "PERPSCOPE_SQL_TIMEOUT_S": "2.5"}
    )
    assert (env.workbench.max_rows, env.workbench.timeout_s) == (7, 2.5)
    assert isinstance(env.workbench.max_rows, int)
    assert env.source == f"{cfg}, PERPSCOPE_SQL_MAX_ROWS, PERPSCOPE_SQL_TIMEOUT_S"


def test_example_config_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    cfg = load_config(example, environ={})
    assert cfg.workbench.max_rows == 10_000
    # the example spells out every built-in alert rule at its default
    from perpscope.domain.alert_rules import BUILTINS

    assert cfg.alerts.rules == tuple(BUILTINS.values())
    assert cfg.alerts.notify == ()


def test_demo_store_sits_beside_the_users_store() -> None:
    assert demo_store_path(Path("/d/perpscope/store")) == Path("/d/perpscope/demo")
    assert demo_store_path(Path("/d/mine")) == Path("/d/mine-demo")


def test_demo_refuses_to_wipe_a_store_that_is_not_a_demo(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "real"
    real.mkdir()
    (real / "precious.txt").write_text("keep me")
    res = cli("demo", "--store", str(real))
    assert res.code == 1
    assert "refusing" in _one_line_error(res)
    assert (real / "precious.txt").read_text() == "keep me"


def test_demo_prints_a_simulated_cross_venue_funding_table(demo_store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("demo", "--store", str(demo_store), "--seed", "11")
    assert res.code == 0, res.err
    assert "SIMULATED" in res.out
    for asset in ("BTC", "ETH", "SOL"):
        assert f"{asset} funding across venues (SIMULATED)" in res.out
    assert "perpscope --store" in res.out  # what to try next


def test_demo_json_numbers_match_an_independent_sql_computation(demo_store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("demo", "--store", str(demo_store), "--seed", "11", "--format", "json")
    out = res.json()
    assert out["simulated"] is True
    # Independent: recompute with DuckDB over an export of the same store.
    lake = Lake(demo_store)
    con = duckdb.connect()
    con.register("funding", lake.dataset("funding"))
    con.register("oi", lake.dataset("open_interest"))
    latest = con.sql(
        """
        SELECT split_part(instrument, '-', 1) AS asset, venue, rate, interval_h,
               rate * 8 / interval_h AS r8
        FROM funding QUALIFY ts = max(ts) OVER (PARTITION BY venue, instrument)
        """
    ).pl()
    weights = con.sql(
        "SELECT venue, instrument, oi_usd FROM oi "
        "QUALIFY ts = max(ts) OVER (PARTITION BY venue, instrument)"
    ).pl()
    for asset_row in out["funding"]["assets"]:
        mine = latest.filter(pl.col("asset") == asset_row["asset"])
        w = weights.filter(pl.col("instrument") == f"{asset_row['asset']}-USDT-PERP")
        joined = mine.join(w, on="venue")
        expected = (joined["r8"] * joined["oi_usd"]).sum() / joined["oi_usd"].sum()
        assert asset_row["weighting"] == "oi"
        # JSON rounds rates to 1e-10 and annualised values to 1e-8 (docs/cli.md)
        assert asset_row["agg_rate_8h"] == pytest.approx(expected, abs=1e-10)
        assert asset_row["agg_annualized"] == pytest.approx(expected * 1095, abs=1e-8)
        assert asset_row["spread_8h"] == pytest.approx(mine["r8"].max() - mine["r8"].min())
    for v in out["funding"]["venues"]:
        assert v["annualized"] == pytest.approx(
            annualized_rate(v["rate"], v["interval_h"]), abs=1e-6
        )  # the rate's rounding (1e-10) times up to 8760/1
        assert v["annualized"] == pytest.approx(v["rate"] * 8760 / v["interval_h"], abs=1e-6)


def test_demo_is_deterministic_per_seed(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    a = cli(
        "demo", "--store", str(tmp_path / "a"), "--seed", "3", "--days", "3", "--format", "json"
    )
    b = cli(
        "demo", "--store", str(tmp_path / "b"), "--seed", "3", "--days", "3", "--format", "json"
    )
    c = cli(
        "demo", "--store", str(tmp_path / "c"), "--seed", "4", "--days", "3", "--format", "json"
    )
    strip = lambda r: {k: v for k, v in r.json().items() if k != "store"}  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_store_info_lists_tables_rows_and_spans(demo_store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(demo_store), "store", "info", "--format", "json")
    info = {t["table"]: t for t in res.json()}
    counts = cli(
        "--store", str(demo_store), "sql", "SELECT count(*) AS n FROM funding", "--format", "json"
    ).json()
    assert info["funding"]["rows"] == counts[0]["n"]
    assert set(info) == {
        "instruments", "leverage_tiers", "ohlcv", "funding", "funding_snapshot", "open_interest",
        "long_short", "taker_volume", "liquidations", "sim_positions", "insurance_fund",
        "options_snapshot", "option_trades", "sim_option_positions",
    }  # fmt: skip
    assert info["funding"]["first_ts"].endswith("Z")


def test_store_info_without_a_store_says_so(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(tmp_path / "nothing"), "store", "info")
    assert res.code == 1
    assert "no store at" in _one_line_error(res)


def test_export_parquet_is_hive_partitioned_and_readable_by_duckdb(
    demo_store: Path, tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "export"
    res = cli("--store", str(demo_store), "export", "parquet", str(out), "--format", "json")
    assert res.code == 0, res.err
    parts = sorted(p.relative_to(out / "funding") for p in (out / "funding").rglob("*.parquet"))
    assert str(parts[0]).startswith("venue=sim1/instrument=BTC-USDT-PERP/date=")
    back = duckdb.sql(
        f"SELECT venue, instrument, count(*) AS n, sum(rate) AS s FROM "
        f"read_parquet('{out}/funding/**/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL ORDER BY ALL"
    ).pl()
    stored = (
        Lake(demo_store)
        .read("funding")
        .group_by("venue", "instrument")
        .agg(n=pl.len(), s=pl.col("rate").sum())
        .sort("venue", "instrument")
    )
    assert back["n"].to_list() == stored["n"].to_list()
    assert back["s"].to_list() == pytest.approx(stored["s"].to_list())


def test_store_optimize_runs_and_reports(demo_store: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy"
    lake = Lake(copy)
    lake.ingest("funding", Lake(demo_store).read("funding").head(10))
    lake.ingest("funding", Lake(demo_store).read("funding").slice(10, 10))
    res = cli(
        "--store", str(copy), "store", "optimize", "--retention-hours", "0", "--format", "json"
    )
    assert res.code == 0, res.err
    report = {r["table"]: r for r in res.json()}
    assert report["funding"]["files_removed"] == 2
    assert lake.read("funding").height == 20


def test_console_script_and_module_run_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "perpscope", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("perpscope ")
    helped = subprocess.run(
        [sys.executable, "-m", "perpscope", "--help"], capture_output=True, text=True, timeout=60
    )
    for group in ("demo", "sql", "store", "import", "export", "config"):
        assert group in helped.stdout


def test_public_api_all_is_complete() -> None:
    import inspect

    import perpscope

    public = {
        n
        for n in dir(perpscope)
        if (not n.startswith("_") or n == "__version__")
        and not inspect.ismodule(getattr(perpscope, n))
    }
    assert set(perpscope.__all__) == public
    assert json.dumps(sorted(perpscope.__all__))  # every name is a plain string
