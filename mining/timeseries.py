"""The daily activity series: STL trend and weekly seasonality, anomalies, next-week forecast.

statsmodels fits run only where they pay: STL needs ≥ 3 weeks of span, the AR forecast ≥ 4 weeks.
The AR part is fitted by Yule-Walker (closed form), which keeps all users under a few ms each.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from mining.facts import Fact, insufficient
from mining.frame import UserEvents

MIN_ACTIVE_DAYS = 7
MIN_SPAN_STL = 21
MIN_SPAN_FORECAST = 28
ANOMALY_Z = 3.5
TREND_REL = 0.1  # change per 30 days, relative to the mean level, that counts as a trend


def daily_series(ev: UserEvents) -> pd.Series:
    """Events per local calendar day, zero-filled from the first to the last active day."""
    day = ev.local.as_unit("ns").asi8 // 86_400_000_000_000
    counts = np.bincount(day - day.min()).astype(float)
    start = pd.Timestamp(int(day.min()) * 86_400_000_000_000)
    return pd.Series(counts, index=pd.date_range(start, periods=len(counts), freq="D"))


def timeseries_facts(ev: UserEvents, ctx: Any = None) -> list[Fact]:
    events = getattr(getattr(ctx, "nouns", None), "events", "events")
    if ev.n == 0:
        return [insufficient("ts.trend", "timeseries", "an activity trend", 0, "no events")]
    y = daily_series(ev)
    active = int((y > 0).sum())
    span = len(y)
    if active < MIN_ACTIVE_DAYS or span < MIN_SPAN_STL:
        need = f"needs ≥ {MIN_ACTIVE_DAYS} active days over ≥ {MIN_SPAN_STL} days; has {active} over {span}"
        return [
            insufficient("ts.trend", "timeseries", "an activity trend", ev.n, need),
            insufficient("ts.forecast", "timeseries", "an activity forecast", ev.n, need),
        ]
    from statsmodels.tsa.seasonal import STL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Non-robust STL (2 inner passes) is ~5x cheaper than robust; anomalies are judged on the
        # residual with a robust (median/MAD) scale instead, so outliers still stand out.
        res = STL(y.to_numpy(), period=7, robust=False).fit()
    trend, seasonal, resid = res.trend, res.seasonal, res.resid
    facts: list[Fact] = []
    conf = min(1.0, active / 60)

    # Trend: slope of the STL trend, per 30 days, relative to the mean level.
    x = np.arange(span)
    slope = float(np.polyfit(x, trend, 1)[0])
    level = float(max(y.mean(), 1e-9))
    rel = slope * 30 / level
    direction = "rising" if rel > TREND_REL else "falling" if rel < -TREND_REL else "steady"
    facts.append(
        Fact(
            "ts.trend",
            "timeseries",
            f"Activity is {direction} ({rel:+.0%} per month relative to an average of "
            f"{level:.2f} {events}/day).",
            {"slope_per_day": round(slope, 4), "relative_per_30d": round(rel, 3), "direction": direction},
            ev.n,
            conf,
        )
    )
    # Weekly seasonality: seasonal component by weekday, and its strength.
    wd = pd.DatetimeIndex(y.index).weekday.to_numpy()
    by_day = np.array([seasonal[wd == d].mean() if (wd == d).any() else 0.0 for d in range(7)])
    var_r = float(np.var(resid))
    strength = max(0.0, 1 - var_r / max(float(np.var(seasonal + resid)), 1e-12))
    from mining.rhythm import DAYS

    high = DAYS[int(np.argmax(by_day))]
    facts.append(
        Fact(
            "ts.weekly",
            "timeseries",
            f"Weekly seasonality strength {strength:.2f}; the seasonal high is on {high}s.",
            {"strength": round(strength, 3), "seasonal_by_weekday": by_day.round(3).tolist()},
            ev.n,
            conf,
        )
    )
    # Anomalies: days whose residual is far out on a robust scale.
    med = float(np.median(resid))
    mad = float(np.median(np.abs(resid - med))) * 1.4826
    scale = max(mad, 0.5)  # sparse series have MAD≈0; a floor keeps ordinary busy days normal
    z = (resid - med) / scale
    idx = np.where((np.abs(z) > ANOMALY_Z) & (y.to_numpy() > 0))[0]
    days = [
        {"date": y.index[i].date().isoformat(), "events": int(y.iloc[i]), "z": round(float(z[i]), 1)}
        for i in idx
    ]
    days.sort(key=lambda d: -abs(d["z"]))
    if days:
        top = days[0]
        statement = (
            f"{len(days)} unusual day(s); the most unusual was {top['date']} with {top['events']} {events}."
        )
    else:
        statement = "No unusual days: activity stays within its usual weekly pattern."
    facts.append(
        Fact(
            "ts.anomalies", "timeseries", statement, {"days": days[:10], "threshold_z": ANOMALY_Z}, ev.n, conf
        )
    )

    if span >= MIN_SPAN_FORECAST:
        facts.append(_forecast(y, seasonal, ev.n, conf, events))
    else:
        facts.append(
            insufficient(
                "ts.forecast", "timeseries", "an activity forecast", ev.n, f"needs ≥ {MIN_SPAN_FORECAST} days"
            )
        )
    return facts


def _forecast(y: pd.Series, seasonal: np.ndarray, n: int, conf: float, events: str = "events") -> Fact:
    """AR(2) with a constant (ARIMA(2,0,0)) on the deseasonalised series, plus the weekly pattern.

    Fitted with statsmodels' AutoReg (conditional least squares): the same model as
    ``ARIMA(order=(2, 0, 0))`` at a tenth of the state-space fit's cost, which matters at 1k users."""
    from statsmodels.tsa.ar_model import AutoReg

    deseason = y.to_numpy() - seasonal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = AutoReg(deseason, lags=2, trend="c").fit()
            base = np.asarray(fit.predict(start=len(deseason), end=len(deseason) + 6))
        except Exception:  # degenerate series (constant): the mean is the honest forecast
            base = np.full(7, deseason.mean())
    # Continue the weekly pattern: the seasonal value of the same weekday last week.
    season_next = seasonal[-7:]
    pred = np.clip(base + season_next, 0, None)
    total = float(pred.sum())
    recent = float(y.iloc[-28:].sum() / 4)
    return Fact(
        "ts.forecast",
        "timeseries",
        f"About {total:.0f} {events} expected next week (recent weeks averaged {recent:.0f}).",
        {
            "next_7_days": pred.round(2).tolist(),
            "total": round(total, 1),
            "recent_weekly_avg": round(recent, 1),
        },
        n,
        conf * 0.8,
    )
