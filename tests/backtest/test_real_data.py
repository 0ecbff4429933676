"""Real data: BTC spot 1h 2020-2023 with the real Binance BTC funding (supervik, Date in UTC+3).

Both files go through the real importer into a temporary store and back out through the loader;
the engine and the reference must agree trade for trade on the funding fade and on random signals.
"""

from __future__ import annotations

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.loader import LoadedMarket, load_market
from perpscope.backtest.reference import run_reference
from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.types import EngineConfig, Signals
from perpscope.services.importer import FileOptions, import_funding, import_ohlcv
from perpscope.store.lake import Lake
from tests.backtest.test_engine_vs_reference import assert_same
from tests.conftest import require_shared

FUNDING = "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
CANDLES = "candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz"


@pytest.fixture(scope="module")
def real_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    funding, candles = require_shared(FUNDING), require_shared(CANDLES)
    lake = Lake(tmp_path_factory.mktemp("real") / "store")
    lake.init()
    import_funding(
        lake, funding, venue="binance", instrument="BTC-USDT-PERP",
        opts=FileOptions(tz_offset_h=3.0),
    )  # fmt: skip
    import_ohlcv(
        lake, candles, venue="binance", instrument="BTC-USDT", timeframe="1h", kind="trade",
        opts=FileOptions(),
    )  # fmt: skip
    return lake


@pytest.fixture(scope="module")
def real(real_lake: Lake) -> LoadedMarket:
    return load_market(real_lake, "binance", "BTC-USDT-PERP", "1h", price_instrument="BTC-USDT")


def test_real_market_is_aligned(real: LoadedMarket) -> None:
    m = real.market
    assert len(m.ts) == 35_032
    assert len(m.funding_ts) == 4_383
    hour = 3_600_000_000_000
    # after the UTC+3 correction every settlement is on 00/08/16 UTC, i.e. on a bar open
    assert set(((m.funding_ts // hour) % 24).tolist()) == {0, 8, 16}
    assert np.isin(m.funding_ts[m.funding_ts >= m.ts[0]], m.ts).mean() > 0.99
    # the known values: 2020-01-01 00:00 UTC = -0.00012359, 2020-03-13 08:00 = -0.003
    t0 = np.datetime64("2020-01-01T00:00", "ns").astype(np.int64)
    assert m.funding_rate[np.searchsorted(m.funding_ts, t0)] == pytest.approx(-0.00012359)
    assert real.notes[0].startswith("prices are BTC-USDT candles")


@pytest.mark.parametrize(
    ("leverage", "params", "min_trades"),
    [
        (3.0, FundingFadeParams(), 20),
        (50.0, FundingFadeParams(entry_window=0, regime_filter="half", choppy_rules=True), 50),
    ],
)
def test_engine_matches_reference_on_real_funding_fade(
    real: LoadedMarket, leverage: float, params: FundingFadeParams, min_trades: int
) -> None:
    sig = funding_fade(real.market, params)
    cfg = EngineConfig(leverage=leverage, risk_frac=0.02, time_stop_bars=72)
    a, b = run_backtest(real.market, sig, cfg), run_reference(real.market, sig, cfg)
    assert len(a.trades) > min_trades
    assert_same(a, b)
    assert a.column("funding_usd").any()


def test_engine_matches_reference_on_real_random_signals(real: LoadedMarket) -> None:
    n = len(real.market.ts)
    rng = np.random.default_rng(5)
    entry = rng.choice([-1, 0, 1], n, p=[0.02, 0.96, 0.02]).astype(np.int8)
    targets = np.tile([0.8, 1.7, 3.5], (n, 1))
    limit = np.where(rng.random(n) < 0.3, real.market.c * (1 - entry * 0.003), np.nan)
    sig = Signals(entry, rng.random(n) < 0.01, rng.uniform(0.005, 0.08, n), targets, limit)
    cfg = EngineConfig(leverage=20.0, mmr=0.005, time_stop_bars=48)
    a, b = run_backtest(real.market, sig, cfg), run_reference(real.market, sig, cfg)
    assert len(a.trades) > 300
    assert_same(a, b)


def test_resampled_4h_bars_are_complete(real_lake: Lake, real: LoadedMarket) -> None:
    """4h bars from the stored 1h: each is 4 complete hours (the 7 one-hour gaps drop bars)."""
    four = load_market(real_lake, "binance", "BTC-USDT-PERP", "4h", price_instrument="BTC-USDT")
    assert four.resampled_from == "1h"
    hour = 3_600_000_000_000
    assert np.all((four.market.ts // hour) % 4 == 0)
    one = real.market
    k = 100
    start = np.searchsorted(one.ts, four.market.ts[k])
    assert one.ts[start + 3] - one.ts[start] == 3 * hour
    assert four.market.o[k] == one.o[start]
    assert four.market.h[k] == one.h[start : start + 4].max()
    assert four.market.l[k] == one.l[start : start + 4].min()
    assert four.market.c[k] == one.c[start + 3]
    assert len(four.market.ts) < len(one.ts) / 4


def test_missing_candles_say_how_to_price(real_lake: Lake) -> None:
    with pytest.raises(ValueError, match="--price-instrument"):
        load_market(real_lake, "binance", "BTC-USDT-PERP", "1h")
