"""The validation oracle: compares a service's SLO signals after mitigation with those before.

`passed` only when the service meets its SLOs afterwards and nothing got worse; missing signals
are never read as healthy (transactional no-regression: when in doubt, it did not pass)."""
from __future__ import annotations

from typing import Literal

from ..domain.models import Health, Verdict
from ..domain.policy import Slo


def meets_slo(h: Health, slo: Slo) -> tuple[bool, list[str]]:
    why = []
    if h.error_ratio is not None and h.error_ratio > slo.max_error_ratio:
        why.append(f"error ratio {h.error_ratio:.1%} > {slo.max_error_ratio:.0%}")
    if h.p95_seconds is not None and h.p95_seconds > slo.max_p95_seconds:
        why.append(f"P95 {h.p95_seconds * 1000:.0f} ms > {slo.max_p95_seconds * 1000:.0f} ms")
    if h.ready_replicas is not None and h.desired_replicas is not None \
            and h.ready_replicas < max(1, h.desired_replicas):
        why.append(f"{h.ready_replicas}/{h.desired_replicas} replicas ready")
    if h.scrape_up is False:
        why.append("metrics scrape down")
    return not why, why


DEFAULT_SLO = Slo()


def judge(before: Health, after: Health, slo: Slo = DEFAULT_SLO) -> Verdict:
    if not after.complete:
        return Verdict(verdict="same", passed=False, message="signals after mitigation are incomplete: not judged")
    worse, better = [], []

    def compare(name: str, b: float | None, a: float | None, margin: float, limit: float,
                relative: bool = False) -> None:
        """A rise counts as worse only beyond the noise margin *and* past the SLO limit: 9 → 21 ms
        is noise for a 500 ms objective, not a regression."""
        if b is None or a is None:
            return
        m = margin * max(b, 1e-9) if relative else margin
        if a > b + m and a > limit:
            worse.append(f"{name} {b:.3g} → {a:.3g}")
        elif a < b - m:
            better.append(f"{name} {b:.3g} → {a:.3g}")
    compare("error ratio", before.error_ratio, after.error_ratio, slo.error_ratio_margin, slo.max_error_ratio)
    compare("P95 s", before.p95_seconds, after.p95_seconds, slo.p95_margin, slo.max_p95_seconds, relative=True)
    if before.ready_replicas is not None and after.ready_replicas is not None:
        if after.ready_replicas < before.ready_replicas:
            worse.append(f"ready replicas {before.ready_replicas} → {after.ready_replicas}")
        elif after.ready_replicas > before.ready_replicas:
            better.append(f"ready replicas {before.ready_replicas} → {after.ready_replicas}")
    if before.scrape_up is True and after.scrape_up is False:
        worse.append("metrics scrape went down")
    ok, why = meets_slo(after, slo)
    if worse:
        return Verdict(verdict="worse", passed=False, message="worse: " + "; ".join(worse))
    verdict: Literal["better", "same"] = "better" if better else "same"
    if ok:
        return Verdict(verdict=verdict, passed=True,
                       message="within SLO" + (": " + "; ".join(better) if better else ""))
    return Verdict(verdict=verdict, passed=False, message="still outside SLO: " + "; ".join(why))


def next_step(verdict: Verdict, extended: bool) -> str:
    """resolve | extend | undo. Better but not yet within the SLO (fresh pods' first requests are
    slow) earns one more window that starts after the first judgement; worse, the same, or still
    short after that window is undone."""
    if verdict.passed:
        return "resolve"
    if verdict.verdict == "better" and not extended:
        return "extend"
    return "undo"
