"""The volatility picture of an option chain: IV and greeks, smiles, ATM term structure, 25-delta
risk reversal and butterfly.

Pure functions over a chain from :func:`perpscope.analytics.options.chain_as_of`. IV comes from the
venue (``mark_iv``) when present; otherwise it is inverted from the mark price with Black-76 on the
expiry's forward (``underlying_px``). A coin-quoted mark (Deribit: ``price_currency`` BTC or ETH)
is worth ``mark_price x underlying_px`` USD. Greeks come from the venue when present, otherwise from
Black-76 at that IV. Time to expiry is measured from each row's own snapshot time ``ts``, in years
of 365 days (Deribit's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import polars.selectors as cs

from perpscope.analytics.black76 import black76_greeks, implied_vol

__all__ = [
    "TermStructure",
    "smile",
    "term_structure_shape",
    "vol_by_expiry",
    "with_iv_and_greeks",
]

YEAR_S: Final = 365.0 * 86_400.0
_GREEKS: Final = ("delta", "gamma", "vega", "theta")


def _col(frame: pl.DataFrame, name: str) -> pl.Series:
    if name in frame.columns:
        return frame[name].cast(pl.Float64)
    return pl.Series(name, [None] * frame.height, dtype=pl.Float64)


def _source(venue: npt.NDArray[np.bool_], model: npt.NDArray[np.bool_]) -> list[str | None]:
    return [
        "venue" if v else "black76" if m else None
        for v, m in zip(venue.tolist(), model.tolist(), strict=True)
    ]


def with_iv_and_greeks(chain: pl.DataFrame, rate: float = 0.0) -> pl.DataFrame:
    """Add ``iv``, ``iv_source`` and the greeks used downstream, with where each came from.

    Needs ``ts``, ``expiry_ts``, ``strike_px``, ``option_type``, ``underlying_px``, and either
    ``mark_iv`` or ``mark_price`` (with ``price_currency``; USD unless it says otherwise).
    Optional venue greeks ``delta gamma vega theta`` are kept where present.

    Returns:
        The chain plus ``t_years``, ``mark_usd``, ``iv`` (a fraction; null when neither the venue
        nor the inversion gives one), ``iv_source`` (venue | black76 | null), ``delta``,
        ``gamma``, ``vega``, ``theta`` (venue values, else Black-76) and ``greeks_source``.
    """
    t_years = ((chain["expiry_ts"] - chain["ts"]).dt.total_microseconds() / (YEAR_S * 1e6)).cast(
        pl.Float64
    )
    fwd = _col(chain, "underlying_px").to_numpy()
    strike = chain["strike_px"].cast(pl.Float64).to_numpy()
    is_call = (chain["option_type"] == "C").to_numpy()
    t = t_years.to_numpy()
    coin_quoted = (
        (chain["price_currency"].fill_null("USD") != "USD").to_numpy()
        if "price_currency" in chain.columns
        else np.zeros(chain.height, dtype=bool)
    )
    mark = _col(chain, "mark_price").to_numpy()
    mark_usd = np.where(coin_quoted, mark * fwd, mark)
    venue_iv = _col(chain, "mark_iv").to_numpy()
    has_venue_iv = np.isfinite(venue_iv) & (venue_iv > 0)
    inverted = implied_vol(mark_usd, fwd, strike, t, is_call, rate)
    iv = np.where(has_venue_iv, venue_iv, inverted)
    source = _source(has_venue_iv, np.isfinite(inverted))
    model = black76_greeks(fwd, strike, t, iv, is_call, rate)
    venue_greeks = {g: _col(chain, g).to_numpy() for g in _GREEKS}
    has_venue_greeks = np.isfinite(venue_greeks["delta"])
    out: dict[str, npt.NDArray[np.float64] | list[str | None]] = {
        "t_years": t,
        "mark_usd": mark_usd,
        "iv": iv,
        "iv_source": source,
        **{g: np.where(has_venue_greeks, venue_greeks[g], model[g]) for g in _GREEKS},
        "greeks_source": _source(has_venue_greeks, np.isfinite(model["delta"])),
    }
    added = pl.DataFrame(
        {
            k: pl.Series(k, v, dtype=pl.String if k.endswith("source") else pl.Float64)
            for k, v in out.items()
        }
    ).with_columns(cs.float().fill_nan(None))
    return chain.drop([c for c in out if c in chain.columns]).hstack(added)


def smile(chain_iv: pl.DataFrame) -> pl.DataFrame:
    """IV smile per expiry: call and put IV by strike, and the out-of-the-money IV.

    The OTM IV is the put's below the forward and the call's at or above it (the other side when
    one is missing): the liquid side of each strike, as a smile is usually drawn.

    Needs the output of :func:`with_iv_and_greeks`.

    Returns:
        ``expiry`` (date), ``expiry_ts``, ``strike_px``, ``forward_px`` (the expiry's median
        ``underlying_px``), ``log_moneyness`` (ln K/F), ``call_iv``, ``put_iv``, ``otm_iv``.
    """
    fwd = pl.col("underlying_px").median().over("expiry_ts")
    by_strike = (
        chain_iv.with_columns(fwd.alias("forward_px"))
        .group_by("expiry_ts", "strike_px")
        .agg(
            pl.col("forward_px").first(),
            pl.col("iv").filter(pl.col("option_type") == "C").first().alias("call_iv"),
            pl.col("iv").filter(pl.col("option_type") == "P").first().alias("put_iv"),
        )
        .sort("expiry_ts", "strike_px")
    )
    below = pl.col("strike_px") < pl.col("forward_px")
    return by_strike.select(
        pl.col("expiry_ts").dt.date().alias("expiry"),
        "expiry_ts",
        "strike_px",
        "forward_px",
        (pl.col("strike_px") / pl.col("forward_px")).log().alias("log_moneyness"),
        "call_iv",
        "put_iv",
        pl.when(below)
        .then(pl.coalesce("put_iv", "call_iv"))
        .otherwise(pl.coalesce("call_iv", "put_iv"))
        .alias("otm_iv"),
    )


def _interp(x_at: float, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float | None:
    """Linear interpolation of y(x) at ``x_at``; ``None`` unless ``x_at`` lies within the data."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0 or not (x.min() <= x_at <= x.max()):
        return None
    order = np.argsort(x, kind="stable")
    return float(np.interp(x_at, x[order], y[order]))


def vol_by_expiry(chain_iv: pl.DataFrame, wing_delta: float = 0.25) -> pl.DataFrame:
    """ATM IV, 25-delta call and put IV, risk reversal and butterfly of every expiry.

    ATM IV is the smile's OTM IV interpolated linearly in log-moneyness at the forward. The
    ``wing_delta`` call IV is interpolated in delta among calls, the put IV at ``-wing_delta``
    among puts; risk reversal = call IV - put IV (positive: calls richer), butterfly = the wings'
    mean - ATM IV. A value is null, with a note, when the quotes do not bracket its point.

    Returns:
        ``expiry`` (date), ``expiry_ts``, ``days_to_expiry``, ``forward_px``, ``atm_iv``,
        ``call_25d_iv``, ``put_25d_iv``, ``rr_25d``, ``bf_25d``, ``note``.
    """
    sm = smile(chain_iv)
    rows = []
    for (expiry_ts,), group in chain_iv.group_by("expiry_ts", maintain_order=False):
        s = sm.filter(pl.col("expiry_ts") == expiry_ts)
        atm = _interp(0.0, _arr(s, "log_moneyness"), _arr(s, "otm_iv"))
        calls = group.filter(pl.col("option_type") == "C")
        puts = group.filter(pl.col("option_type") == "P")
        c25 = _interp(wing_delta, _arr(calls, "delta"), _arr(calls, "iv"))
        p25 = _interp(-wing_delta, _arr(puts, "delta"), _arr(puts, "iv"))
        missing = [n for n, v in (("ATM", atm), ("25d call", c25), ("25d put", p25)) if v is None]
        days = group["days_to_expiry"].max() if "days_to_expiry" in group.columns else None
        if days is None:  # from the rows' own snapshot times
            days = group["t_years"].max() * 365.0  # type: ignore[operator]
        rows.append(
            {
                "expiry": s["expiry"][0] if s.height else None,
                "expiry_ts": expiry_ts,
                "days_to_expiry": float(days),  # type: ignore[arg-type]
                "forward_px": float(s["forward_px"][0]) if s.height else None,
                "atm_iv": atm,
                "call_25d_iv": c25,
                "put_25d_iv": p25,
                "rr_25d": c25 - p25 if c25 is not None and p25 is not None else None,
                "bf_25d": (
                    (c25 + p25) / 2 - atm
                    if c25 is not None and p25 is not None and atm is not None
                    else None
                ),
                "note": f"quotes do not bracket {', '.join(missing)}" if missing else None,
            }
        )
    schema: dict[str, pl.DataType] = {
        "expiry": pl.Date(),
        "expiry_ts": pl.Datetime("us", "UTC"),
        "days_to_expiry": pl.Float64(),
        "forward_px": pl.Float64(),
        "atm_iv": pl.Float64(),
        "call_25d_iv": pl.Float64(),
        "put_25d_iv": pl.Float64(),
        "rr_25d": pl.Float64(),
        "bf_25d": pl.Float64(),
        "note": pl.String(),
    }
    return pl.DataFrame(rows, schema=schema).sort("expiry_ts")


def _arr(frame: pl.DataFrame, name: str) -> npt.NDArray[np.float64]:
    return frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()


@dataclass(frozen=True, slots=True)
class TermStructure:
    """The shape of the ATM term structure."""

    front_expiry_ts: object | None
    back_expiry_ts: object | None
    front_atm_iv: float | None
    back_atm_iv: float | None
    inverted: bool | None
    note: str | None


def term_structure_shape(vol: pl.DataFrame, min_front_days: float = 1.0) -> TermStructure:
    """Is the ATM term structure inverted (front IV above back IV)?

    The front is the nearest expiry at least ``min_front_days`` away with an ATM IV (same-day
    expiries are too noisy to read), the back the farthest with one. Inversion (backwardation)
    means near-term stress is priced above the long run.

    Needs the output of :func:`vol_by_expiry`.
    """
    usable = vol.filter(pl.col("atm_iv").is_not_null()).sort("expiry_ts")
    front = usable.filter(pl.col("days_to_expiry") >= min_front_days)
    if front.height < 2:
        return TermStructure(None, None, None, None, None, "fewer than two expiries with ATM IV")
    f, b = front.row(0, named=True), front.row(-1, named=True)
    inverted = bool(f["atm_iv"] > b["atm_iv"])
    return TermStructure(f["expiry_ts"], b["expiry_ts"], f["atm_iv"], b["atm_iv"], inverted, None)
