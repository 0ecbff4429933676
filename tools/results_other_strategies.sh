#!/usr/bin/env bash
# Every number of docs/results/basis-carry.md and docs/results/oi-divergence.md.
#
#   tools/results_other_strategies.sh SHARED_DATA_DIR OUT_DIR
#
# Builds a fresh store in OUT_DIR/store, writes one JSON document per run to OUT_DIR/*.json and
# the trades to OUT_DIR/*.csv. Needs `perpscope` on PATH (or PERPSCOPE="python -m perpscope").
set -euo pipefail
DATA=${1:?shared data directory}
OUT=${2:?output directory}
PS=${PERPSCOPE:-perpscope}
mkdir -p "$OUT"
S="$OUT/store"
ps() { $PS --store "$S" "$@"; }

F="$DATA/funding"
ps import funding "$F/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz" \
  --venue binance --instrument BTC-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-1.json"
ps import funding "$F/supervik_ETH-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz" \
  --venue binance --instrument ETH-USDT-PERP --tz-offset-h 3 --format json > "$OUT/import-2.json"
ps import ohlcv "$DATA/candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz" \
  --venue binance --instrument BTC-USDT --timeframe 1h --format json > "$OUT/import-3.json"
ps import ohlcv "$DATA/candles/tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz" \
  --venue binance --instrument ETH-USDT-PERP --timeframe 1h --format json > "$OUT/import-4.json"
# Coinalyze daily OI of Binance's COIN-M perpetuals (USD contracts), the value at each day's
# START (oi_open: known when the day begins, so no look-ahead), from 2021-09-15
for a in BTC ETH; do
  ps import open-interest "$DATA/open_interest/coinalyze_oi_daily_top10_since2020.csv.gz" \
    --venue binance --instrument $a-USD-PERP --unit usd --value-col oi_open --ts-col timestamp \
    --ts-unit s --filter symbol=${a}USD_PERP.A --format json > "$OUT/import-oi-$a.json"
done

# ---- basis carry, 2020-2023 (1h bars: the rules act at each close)
BTC=(--venue binance --instrument BTC-USDT-PERP --price-instrument BTC-USDT)
ETH=(--venue binance --instrument ETH-USDT-PERP --until 2023-12-31)
for a in btc eth; do
  if [ $a = btc ]; then M=("${BTC[@]}"); else M=("${ETH[@]}"); fi
  ps backtest run basis-carry "${M[@]}" --timeframe 1h --format json \
    --trades "$OUT/carry-$a.csv" > "$OUT/carry-$a.json"
  for y in 2020 2021 2022 2023; do
    ps backtest run basis-carry "${M[@]}" --timeframe 1h --since $y-01-01 --until $y-12-31 \
      --format json --trades "$OUT/carry-$a-$y.csv" > "$OUT/carry-$a-$y.json"
  done
done
ps backtest sweep basis-carry --market binance:BTC-USDT-PERP:BTC-USDT \
  --market binance:ETH-USDT-PERP --timeframe 1h --until 2023-12-31 \
  --grid entry_avg=0.0001,0.0002,0.0003,0.0005 --grid exit_below=0,0.0001,0.0002 \
  --grid margin_warning=0.5,1 --objective total_return --format json > "$OUT/carry-sweep.json"

# ---- OI divergence, 2021-09-21 (a lookback after the OI starts) to 2023-12-31 (funding ends)
for a in btc eth; do
  if [ $a = btc ]; then
    M=(--venue binance --instrument BTC-USDT-PERP --price-instrument BTC-USDT)
  else
    M=(--venue binance --instrument ETH-USDT-PERP)
  fi
  A=$(echo $a | tr a-z A-Z)
  for tf in 1h 4h 1d; do
    for r in 0.5 1.0; do
      ps backtest run oi-divergence "${M[@]}" --oi-market binance:$A-USD-PERP --timeframe $tf \
        --since 2021-09-21 --until 2023-12-31 --param min_ratio=$r --format json \
        --trades "$OUT/oi-$a-$tf-$r.csv" > "$OUT/oi-$a-$tf-$r.json"
    done
  done
  m=binance:$A-USDT-PERP
  if [ $a = btc ]; then m=$m:BTC-USDT; fi
  ps backtest sweep oi-divergence --market $m --oi-market binance:$A-USD-PERP --timeframe 4h \
    --since 2021-09-21 --until 2023-12-31 --grid lookback_h=48,120,240 \
    --grid min_ratio=0.25,0.5,1 --grid min_move=0.02,0.05 --format json > "$OUT/oi-sweep-$a.json"
  ps backtest walkforward oi-divergence --market $m --oi-market binance:$A-USD-PERP \
    --timeframe 4h --since 2021-09-21 --until 2023-12-31 --grid lookback_h=48,120,240 \
    --grid min_ratio=0.25,0.5,1 --folds 3 --is-ratio 2 --min-trades 5 --format json \
    > "$OUT/oi-wf-$a.json"
done
echo "done: $OUT"
