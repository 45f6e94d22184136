"""Pure: the verdict of one run, from what the benchmark measured and read, never from what the
operator says of itself (an Incident's phase is recorded, not believed).

healed    = the fault's effect is gone (the case's own check on the objects as they are, and every pod
            of the workload Ready and serving) AND the benchmark's SLO holds over a full window, while
            the effect stays gone; TTM = fault → the start of that window.
collateral = a change (diff, managedFields, Incident action, pod replaced) to an object that was
            neither at fault nor one the case allows the healing to touch.
diagnosis = the first Incident's spec.service against the case's faulty workload(s).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from . import slo as slomod
from .collateral import ObjectChange, collateral, parse_time
from .objects import Key
from .settings import SLO

HEALED, HEALED_COLLATERAL, NOT_HEALED, INVALID = "healed", "healed-with-collateral", "not-healed", "invalid"


@dataclass
class RunFacts:
    case: str
    fault_at: float  # the injection done (wall clock)
    end_at: float  # the end of the measurement
    baseline_start: float
    samples: Sequence[slomod.Sample]
    readings: Sequence[tuple[float, bool]]  # (at, effect gone?) from the case's check, fault_at onwards
    incidents: Sequence[dict]  # every Incident that exists at the end (all created during the run)
    changes: Sequence[ObjectChange]  # object_changes + merged Incident actions
    touchable: set[Key]  # faulty objects plus what the case lets the healing change
    services: Sequence[str]  # the faulty workload(s): a right diagnosis names one
    slo: SLO = field(default_factory=SLO)
    last_reason: str = ""  # the effect check's last reason (why the effect is not gone)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def duration_seconds(text: str | None) -> float | None:
    """The operator's own `42s`, `1m35s`, `1h2m3.5s` → seconds."""
    if not text:
        return None
    total, num = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
        elif text[i:i + 2] == "ms":
            total += float(num or 0) / 1000
            num = ""
            i += 1
        elif ch in units:
            total += float(num or 0) * units[ch]
            num = ""
        else:
            return None
        i += 1
    return total


def effect_onset(samples: Sequence[slomod.Sample], fault_at: float, slo: SLO) -> float | None:
    """When the benchmark's own traffic first felt the fault: its first request after the injection
    that failed or took longer than the SLO's P95. None: no request ever did (a fault the users did
    not feel, such as a new revision that never took over). A fault applied as a new revision
    shows only once that revision serves: this is where the detector could first have seen it."""
    for s in samples:
        if s.at >= fault_at and (s.outcome == slomod.ERROR or s.seconds > slo.max_p95_seconds):
            return s.at
    return None


def judge(f: RunFacts) -> dict:
    slo = f.slo
    base = slomod.window(f.samples, f.baseline_start, f.fault_at)
    during = slomod.window(f.samples, f.fault_at, f.end_at)
    incs = sorted(f.incidents, key=lambda i: i["metadata"].get("creationTimestamp") or "")
    before = [i for i in incs if (parse_time(i["metadata"].get("creationTimestamp")) or 0) < int(f.fault_at)]
    after = [i for i in incs if i not in before]
    first = after[0] if after else None
    ttd = None
    if first:
        ttd = max(0.0, (parse_time(first["metadata"]["creationTimestamp"]) or f.fault_at) - f.fault_at)
    onset = effect_onset(f.samples, f.fault_at, slo)
    healed_at = slomod.first_healed(f.samples, f.readings, f.fault_at, slo, until=f.end_at)
    ttm = None if healed_at is None else healed_at - f.fault_at
    after_window = slomod.window(f.samples, healed_at, healed_at + slo.window_seconds) if healed_at else None
    bad = collateral(f.changes, f.touchable)
    effect_seen = any(not ok for _, ok in f.readings)
    services = [i["spec"].get("service") for i in after]
    diagnosis = None if first is None else ("right" if first["spec"].get("service") in f.services else "wrong")
    llm = {"calls": 0, "promptTokens": 0, "completionTokens": 0}
    for i in incs:
        got = (i.get("status") or {}).get("llm") or {}
        for k in llm:
            llm[k] += int(got.get(k) or 0)
    if not slomod.meets(base, slo):
        verdict, reason = INVALID, "baseline out of SLO: " + "; ".join(slomod.breaches(base, slo))
    elif not effect_seen:
        verdict, reason = INVALID, "the fault never took effect (its check passed at every reading)"
    elif healed_at is None:
        last = f.readings[-1][1] if f.readings else False
        verdict = NOT_HEALED
        if not last:
            reason = f"effect still there at the end: {f.last_reason or 'check failed'}"
        else:
            reason = "effect gone but the SLO never held for a full window: " + "; ".join(
                slomod.breaches(slomod.window(f.samples, f.end_at - slo.window_seconds, f.end_at), slo))
    elif bad:
        verdict, reason = HEALED_COLLATERAL, "collateral: " + ", ".join(f"{c.kind}/{c.name}" for c in bad)
    else:
        verdict, reason = HEALED, f"effect gone and SLO held for {slo.window_seconds:g}s from +{ttm:.1f}s"
    if before and verdict in (HEALED, HEALED_COLLATERAL, NOT_HEALED):
        reason += f"; {len(before)} Incident(s) opened before the fault (false positives)"
    return {
        "case": f.case, "verdict": verdict, "reason": reason,
        "healed": healed_at is not None, "collateral": [c.as_dict() for c in bad],
        "timeToDetectSeconds": _round(ttd),
        # The fault's effect as the benchmark's traffic first felt it, and detection measured from there.
        "effectOnsetSeconds": _round(None if onset is None else onset - f.fault_at),
        "timeToDetectFromOnsetSeconds": _round(None if onset is None or ttd is None
                                               else max(0.0, f.fault_at + ttd - onset)),
        "operatorTimeToDetectSeconds": _round(duration_seconds(((first or {}).get("status") or {}).get(
            "timeToDetect"))),
        "timeToMitigateSeconds": _round(ttm),
        "operatorTimeToMitigateSeconds": _round(duration_seconds(((first or {}).get("status") or {}).get(
            "timeToMitigate"))),
        "diagnosis": diagnosis, "incidentServices": services, "expectedServices": list(f.services),
        "incidentPhases": [(i.get("status") or {}).get("phase") for i in after],
        "incidentsBeforeFault": len(before),
        "changes": [c.as_dict() for c in f.changes],
        "llm": llm,
        "windows": {"baseline": base.as_dict(), "during": during.as_dict(),
                    "healed": after_window.as_dict() if after_window else None},
    }


def incident_summary(incident: dict, fault_at: float) -> dict:
    """What a run's record keeps of one Incident, as the operator wrote it (recorded, never believed:
    it explains where the benchmark's own TTD and TTM went, it does not make them): its phases,
    each at how many seconds after the fault, and the symptom's onset as the operator dated it."""
    st, spec = incident.get("status") or {}, incident.get("spec") or {}

    def after(stamp: object) -> float | None:
        at = parse_time(stamp) if isinstance(stamp, str) else None
        return None if at is None else round(at - fault_at, 1)
    timeline = [{"phase": e.get("phase"), "afterFaultSeconds": after(e.get("at"))}
                for e in st.get("timeline") or [] if isinstance(e, dict)]
    return {"name": incident["metadata"]["name"], "service": spec.get("service"), "symptom": spec.get("symptom"),
            "phase": st.get("phase"), "created": incident["metadata"].get("creationTimestamp"),
            "onsetAfterFaultSeconds": after(spec.get("detectedAt")),
            "createdAfterFaultSeconds": after(incident["metadata"].get("creationTimestamp")),
            "timeToDetect": st.get("timeToDetect"), "timeToMitigate": st.get("timeToMitigate"),
            "timeline": timeline}


def judge_control(samples: Sequence[slomod.Sample], start: float, end: float, incidents: Sequence[dict],
                  changes: Sequence[ObjectChange], slo: SLO) -> dict:
    """A no-fault control run: every Incident and every change is a false positive."""
    stats = slomod.window(samples, start, end)
    return {"minutes": round((end - start) / 60, 1), "falsePositiveIncidents": len(incidents),
            "incidents": [{"name": i["metadata"]["name"], "service": i["spec"].get("service"),
                           "symptom": i["spec"].get("symptom"), "phase": (i.get("status") or {}).get("phase")}
                          for i in incidents],
            "falsePositiveChanges": len(changes), "changes": [c.as_dict() for c in changes],
            "trafficWithinSLO": slomod.meets(stats, slo), "traffic": stats.as_dict()}
