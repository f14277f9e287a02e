"""Per-arm click, accept and reject rates of online experiments, from stored feedback events.

The unit shown is the recommendation (did anyone click, accept or reject something in it); the
confidence intervals treat the user as the unit of independence (one person's recommendations
are not independent draws): the ratio estimator's cluster-robust variance, normal 95% intervals.
Each arm is compared with the experiment's first arm (its control): difference, interval, p-value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.experiments import ExperimentsConfig
from core.models import Event, Recommendation

Z95 = 1.959963984540054
OUTCOMES = {"click": ("clicked", "accepted"), "accept": ("accepted",), "reject": ("rejected",)}


def experiment_report(
    session: Session, config: ExperimentsConfig, name: str | None = None, since: datetime | None = None
) -> dict[str, Any]:
    """Every configured experiment (or ``name`` only) with served recommendations since ``since``."""
    wanted = [config.experiment(name)] if name else list(config.experiments)
    recs = select(Recommendation.id, Recommendation.user_id, Recommendation.experiment, Recommendation.arm)
    recs = recs.where(Recommendation.experiment.in_([e.name for e in wanted]))
    if since is not None:
        recs = recs.where(Recommendation.created_at >= since)
    served = session.execute(recs).all()
    reactions: dict[str, set[str]] = defaultdict(set)
    fb = (
        select(Event.recommendation_id, Event.attributes)
        .join(Recommendation, Recommendation.id == Event.recommendation_id)
        .where(Event.kind == "feedback", Recommendation.experiment.in_([e.name for e in wanted]))
    )
    if since is not None:
        fb = fb.where(Recommendation.created_at >= since)
    for rec_id, attrs in session.execute(fb).all():
        kind = (attrs or {}).get("feedback")
        if rec_id and kind:
            reactions[rec_id].add(str(kind))
    out = []
    for e in wanted:
        rows = [(r, u, a) for r, u, x, a in served if x == e.name]
        # arms in the file first (the first is the control), then any served before the file changed
        arms = [a.name for a in e.arms] + sorted({str(a) for _, _, a in rows} - {a.name for a in e.arms})
        by_arm = {arm: _arm_stats([(r, u) for r, u, a in rows if a == arm], reactions) for arm in arms}
        control = arms[0]
        for arm in arms[1:]:
            by_arm[arm]["vs_control"] = {
                o: _difference(by_arm[control]["_clusters"][o], by_arm[arm]["_clusters"][o]) for o in OUTCOMES
            }
        for stats in by_arm.values():
            stats.pop("_clusters")
        out.append(
            {
                "experiment": e.name,
                "description": e.description,
                "control": control,
                "arms": [{"arm": arm, **by_arm[arm]} for arm in arms],
            }
        )
    return {
        "experiments": out,
        "since": since.isoformat() if since else None,
        "method": "rates per recommendation; 95% intervals with users as clusters (ratio estimator, "
        "cluster-robust variance); differences against the first arm, two-sided normal p-values",
    }


def _arm_stats(rows: list[tuple[str, str]], reactions: dict[str, set[str]]) -> dict[str, Any]:
    per_user: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # recs, click, accept, reject
    for rec_id, user in rows:
        got = reactions.get(rec_id, set())
        t = per_user[user]
        t[0] += 1
        for j, kinds in enumerate(OUTCOMES.values(), start=1):
            t[j] += int(any(k in got for k in kinds))
    table = np.array(list(per_user.values()), dtype=float).reshape(-1, 4)
    clusters = {o: (table[:, j], table[:, 0]) for j, o in enumerate(OUTCOMES, start=1)}
    rates = {}
    for o, (y, n) in clusters.items():
        rate, se = _ratio(y, n)
        rates[o] = {
            "rate": _round(rate),
            "ci95": _interval(rate, se, clip=True),
            "recommendations_with": int(y.sum()),
        }
    return {"recommendations": int(table[:, 0].sum()), "users": len(per_user), **rates, "_clusters": clusters}


def _ratio(y: np.ndarray, n: np.ndarray) -> tuple[float | None, float | None]:
    """sum(y)/sum(n) and its cluster-robust standard error (None below two clusters)."""
    total = float(n.sum())
    if total == 0:
        return None, None
    r = float(y.sum()) / total
    g = len(n)
    if g < 2:
        return r, None
    var = g / (g - 1) * float(((y - r * n) ** 2).sum()) / total**2
    return r, math.sqrt(var)


def _difference(control: tuple[np.ndarray, np.ndarray], arm: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    (ra, sa), (rb, sb) = _ratio(*control), _ratio(*arm)
    if ra is None or rb is None:
        return {"difference": None, "ci95": None, "p_value": None}
    d = rb - ra
    se = math.sqrt(sa**2 + sb**2) if sa is not None and sb is not None else None
    p = None
    if se is not None:
        p = 1.0 if se == 0 and d == 0 else (0.0 if se == 0 else math.erfc(abs(d) / se / math.sqrt(2)))
    return {"difference": _round(d), "ci95": _interval(d, se), "p_value": _round(p)}


def _interval(x: float | None, se: float | None, clip: bool = False) -> list[float] | None:
    if x is None or se is None:
        return None
    lo, hi = x - Z95 * se, x + Z95 * se
    if clip:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return [round(lo, 4), round(hi, 4)]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def render(report: dict[str, Any]) -> str:
    """The report as a table for a terminal."""
    lines = []
    for e in report["experiments"]:
        lines.append(f"experiment {e['experiment']}" + (f" — {e['description']}" if e["description"] else ""))
        lines.append(
            f"  {'arm':<16}{'recs':>7}{'users':>7}  {'click rate (95% CI)':<26}{'accept rate (95% CI)':<26}"
            f"{'reject rate (95% CI)':<26}"
        )
        for a in e["arms"]:
            cells = "".join(f"{_cell(a[o]['rate'], a[o]['ci95']):<26}" for o in OUTCOMES)
            lines.append(f"  {a['arm']:<16}{a['recommendations']:>7}{a['users']:>7}  {cells}")
        for a in e["arms"][1:]:
            for o, d in a["vs_control"].items():
                if d["difference"] is None:
                    continue
                pv = d["p_value"]
                p = "n/a" if pv is None else "<0.0001" if pv < 1e-4 else f"{pv:.4f}"
                lines.append(
                    f"  {a['arm']} vs {e['control']}: {o} rate {d['difference']:+.4f} "
                    f"(95% CI {_span(d['ci95'], signed=True)}, p={p})"
                )
        lines.append("")
    lines.append(report["method"])
    return "\n".join(line.rstrip() for line in lines)


def _cell(rate: float | None, ci: list[float] | None) -> str:
    return "n/a" if rate is None else f"{rate:.3f} ({_span(ci)})"


def _span(ci: list[float] | None, signed: bool = False) -> str:
    if ci is None:
        return "n/a"
    return f"{ci[0]:+.3f}..{ci[1]:+.3f}" if signed else f"{ci[0]:.3f}..{ci[1]:.3f}"
