#!/usr/bin/env bash
# Every number of docs/results/funding-fade.md, from the shared real data.
#
#   tools/results_funding_fade.sh SHARED_DATA_DIR OUT_DIR
#
# Builds a fresh store in OUT_DIR/store (never the user's), then writes one JSON document per
# run to OUT_DIR/*.json, the trades of the default runs to OUT_DIR/*.csv and the charts to
# OUT_DIR/*.png. Needs `perpscope` on PATH (or PERPSCOPE="python -m perpscope").
set -euo pipefail
DATA=${1:?shared data directory}
OUT=${2:?output directory}
PS=${PERPSCOPE:-perpscope}
mkdir -p "$OUT"
S="$OUT/store"
ps() { $PS --store "$S" "$@"; }

# ---- data: funding files are written in UTC+3 (see the data's PROVENANCE.md)
F="$DATA/funding"
ps import funding "$F/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz" \
  --venue binance --instrument BTC-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-1.json"
ps import funding "$F/supervik_BTC-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv.gz" \
  --venue bybit --instrument BTC-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-2.json"
ps import funding "$F/supervik_ETH-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz" \
  --venue binance --instrument ETH-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-3.json"
ps import funding "$F/supervik_ETH-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv.gz" \
  --venue bybit --instrument ETH-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-4.json"
ps import ohlcv "$DATA/candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz" \
  --venue binance --instrument BTC-USDT --timeframe 1h --format json > "$OUT/import-5.json"
ps import ohlcv "$DATA/candles/tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz" \
  --venue binance --instrument ETH-USDT-PERP --timeframe 1h --format json > "$OUT/import-6.json"

# ---- how often funding was extreme (|rate| >= 0.05% per 8h), per year and venue
ps sql "SELECT instrument, venue, year(ts) AS year, count(*) AS settlements,
        sum(CASE WHEN rate >= 0.0005 THEN 1 ELSE 0 END) AS above_plus_005,
        sum(CASE WHEN rate <= -0.0005 THEN 1 ELSE 0 END) AS below_minus_005
        FROM funding GROUP BY ALL ORDER BY instrument, venue, year" --format json \
  > "$OUT/extremes.json"

BTC=(--venue binance --instrument BTC-USDT-PERP --price-instrument BTC-USDT)
ETH=(--venue binance --instrument ETH-USDT-PERP --until 2023-12-31)

# ---- the default (frozen) strategy and its variants, whole period
for tf in 4h 1h; do
  ps backtest run funding-fade "${BTC[@]}" --timeframe $tf --format json \
    --trades "$OUT/btc-$tf-default.csv" > "$OUT/btc-$tf-default.json"
  ps backtest run funding-fade "${ETH[@]}" --timeframe $tf --format json \
    --trades "$OUT/eth-$tf-default.csv" > "$OUT/eth-$tf-default.json"
done
variants=(
  "half:--param regime_filter=half"
  "skip:--param regime_filter=skip"
  "choppy:--param choppy_rules=true"
  "overlay:--param regime_filter=half --param choppy_rules=true"
  "overlay-skip:--param regime_filter=skip --param choppy_rules=true"
)
for v in "${variants[@]}"; do
  name=${v%%:*}; args=${v#*:}
  # shellcheck disable=SC2086
  ps backtest run funding-fade "${BTC[@]}" --timeframe 4h $args --format json > "$OUT/btc-4h-$name.json"
  # shellcheck disable=SC2086
  ps backtest run funding-fade "${ETH[@]}" --timeframe 4h $args --format json > "$OUT/eth-4h-$name.json"
done

# ---- two venues (Bybit's funding starts 2021-01-01): both sides of the comparison from 2021
for a in btc eth; do
  if [ $a = btc ]; then M=("${BTC[@]}"); else M=("${ETH[@]}"); fi
  ps backtest run funding-fade "${M[@]}" --timeframe 4h --since 2021-01-01 --format json \
    > "$OUT/$a-4h-from2021-one.json"
  ps backtest run funding-fade "${M[@]}" --timeframe 4h --since 2021-01-01 --format json \
    --confirm-venue bybit --param two_venue=true > "$OUT/$a-4h-from2021-two.json"
  ps backtest run funding-fade "${M[@]}" --timeframe 4h --since 2021-01-01 --format json \
    --confirm-venue bybit --param two_venue=true --param regime_filter=half \
    --param choppy_rules=true > "$OUT/$a-4h-from2021-two-overlay.json"
done

# ---- per year (the earlier bars are the indicators' warm-up)
for y in 2020 2021 2022 2023; do
  ps backtest run funding-fade "${BTC[@]}" --timeframe 4h --since $y-01-01 --until $y-12-31 \
    --format json > "$OUT/btc-4h-$y.json"
  ps backtest run funding-fade "${ETH[@]}" --timeframe 4h --since $y-01-01 --until $y-12-31 \
    --format json > "$OUT/eth-4h-$y.json"
done

# ---- sensitivity: the frozen defaults' neighbours, both markets
ps backtest sweep funding-fade --market binance:BTC-USDT-PERP:BTC-USDT \
  --market binance:ETH-USDT-PERP --timeframe 4h --until 2023-12-31 \
  --grid threshold=0.0003,0.0005,0.0008 --grid min_periods=2,3,4 --grid stop_atr=1,2,3 \
  --grid final_target=funding,r --format json --results "$OUT/sweep.csv" \
  --out "$OUT/sweep.png" > "$OUT/sweep.json"

# ---- walk-forward: choose threshold, streak and regime filter in sample, test the next segment
for a in btc eth; do
  if [ $a = btc ]; then m=binance:BTC-USDT-PERP:BTC-USDT; else m=binance:ETH-USDT-PERP; fi
  ps backtest walkforward funding-fade --market $m --timeframe 4h --until 2023-12-31 \
    --grid threshold=0.0003,0.0005,0.0008 --grid min_periods=2,3 \
    --grid regime_filter=off,half,skip --folds 4 --is-ratio 3 --min-trades 3 \
    --format json --out "$OUT/wf-$a.png" > "$OUT/wf-$a.json"
done

# ---- Monte Carlo of the default BTC and ETH 4h trades at 1% risk
for a in btc eth; do
  ps backtest montecarlo --trades "$OUT/$a-4h-default.csv" --risk-pct 1 --paths 10000 \
    --seed 0 --format json --out "$OUT/mc-$a.png" > "$OUT/mc-$a.json"
  ps backtest montecarlo --trades "$OUT/$a-4h-default.csv" --risk-pct 1 --paths 10000 \
    --seed 0 --method reshuffle --format json > "$OUT/mc-$a-reshuffle.json"
done
echo "done: $OUT"
