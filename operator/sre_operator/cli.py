"""The commands people run against the operator's Incidents (`sre-operator incidents | describe |
approve | reject`): a table of Incidents, one Incident as a readable timeline, and an approval (or a
rejection) that names the attempt it is about and who gave it. They read and write through the
`Cluster` port; rendering is pure (`table`, `timeline`)."""
from __future__ import annotations

import getpass
import os
from typing import Any

from .domain import clock
from .domain.ports import Cluster, Obj
from .domain.vocabulary import Phase
from .incident.pipeline import APPROVE_ANNOTATION, APPROVED_BY_ANNOTATION, REJECT_ANNOTATION


class CommandError(RuntimeError):
    """The command cannot be carried out as asked (the message says why)."""


def _age(value: str | None) -> str:
    seconds = clock.age_seconds(value)
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def table(incidents: list[Obj]) -> str:
    """The Incidents as `kubectl get` shows resources: one line each, newest last."""
    rows = [("NAMESPACE", "NAME", "SERVICE", "SYMPTOM", "PHASE", "ATTEMPTS", "TTD", "TTM", "AGE")]
    for inc in sorted(incidents, key=lambda i: str(i["metadata"].get("creationTimestamp", ""))):
        spec, st, meta = inc.get("spec") or {}, inc.get("status") or {}, inc["metadata"]
        rows.append((str(meta.get("namespace", "")), str(meta["name"]), str(spec.get("service", "")),
                     str(spec.get("symptom", "")), str(st.get("phase", "")), str(st.get("attempts", 0)),
                     str(st.get("timeToDetect", "-")), str(st.get("timeToMitigate", "-")),
                     _age(meta.get("creationTimestamp"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    if not diagnosis:
        return []
    out = ["", f"Diagnosis (by {diagnosis.get('diagnosedBy', 'rules')}; untrusted text, shown only)"]
    if diagnosis.get("pendingSince"):
        out.append(f"  the model's diagnosis, asked in the background at {diagnosis['pendingSince']}, has not "
                   "come yet: the rules' is shown until it does")
    if diagnosis.get("summary"):
        out.append(f"  {diagnosis['summary']}")
    out.append(f"  root cause: {diagnosis.get('rootCause', '')} (confidence {diagnosis.get('confidence', 0)})")
    suspect = diagnosis.get("suspect") or {}
    if suspect:
        out.append(f"  suspect: {str(suspect.get('kind', '')).lower()}/{suspect.get('name', '')}")
    out += [f"  - {fact}" for fact in diagnosis.get("evidence") or []]
    if diagnosis.get("planner"):
        out.append(f"  planned by {diagnosis['planner']}")
    if diagnosis.get("fallbackReason"):
        out.append(f"  the model's plan was not used: {diagnosis['fallbackReason']}")
    return out


def timeline(inc: Obj) -> str:
    """One Incident as a person reads it: what was seen, what was decided, what was done and undone,
    what validation measured, in order."""
    spec, st, meta = inc.get("spec") or {}, inc.get("status") or {}, inc["metadata"]
    out = [(f"Incident {meta.get('namespace', '')}/{meta['name']}: {spec.get('service')} {spec.get('symptom')}"
           f" ({spec.get('severity', 'warning')}, from {spec.get('source', 'manual')})"),
           (f"  phase {st.get('phase', 'Detected')}, attempt(s) {st.get('attempts', 0)}, "
           f"time to detect {st.get('timeToDetect', '-')}, time to mitigate {st.get('timeToMitigate', '-')}")]
    if spec.get("summary"):
        out.append(f"  seen: {spec['summary']}")
    if st.get("message"):
        out.append(f"  now: {st['message']}")
    out.append("")
    out.append("Timeline")
    out += [f"  {t.get('at', '')}  {t.get('phase', ''):<17} {t.get('message', '')}" for t in st.get("timeline") or []]
    out += diagnosis_lines(st.get("diagnosis") or {})
    if st.get("triageSummary"):
        out += ["", "Evidence", f"  {st['triageSummary']}"]
    if st.get("actions"):
        out += ["", "Actions"]
        for a in st["actions"]:
            target = a.get("target") or {}
            out.append(f"  attempt {a.get('attempt')}: {a.get('type')} {target.get('kind')}/{target.get('name')}"
                       f" → {a.get('outcome')}: {a.get('message', '')}")
    if st.get("undoLog"):
        out += ["", "Undone"]
        out += [f"  attempt {u.get('attempt')}: {u.get('action')} {u.get('target')} → {u.get('outcome')}: "
                f"{u.get('message', '')}" for u in st["undoLog"]]
    if st.get("validation"):
        out += ["", "Validation"]
        for v in st["validation"]:
            verdict = v.get("verdict", "pending")
            out.append(f"  attempt {v.get('attempt')}: {verdict} {v.get('message', '')}".rstrip())
    usage = st.get("llm") or {}
    if usage:
        seconds = ", ".join(f"{x}s" for x in usage.get("callSeconds") or [])
        out += ["", (f"Model: {usage.get('model') or '?'}, {usage.get('calls', 0)} call(s), "
                    f"{usage.get('promptTokens', 0)} prompt + {usage.get('completionTokens', 0)} completion tokens"
                    + (f", took {seconds}" if seconds else ""))]
        out += [f"  rules used at {r.get('stage')}: {r.get('reason')}" for r in usage.get("reasons") or []]
    return "\n".join(out)


def describe(cluster: Cluster, namespace: str, name: str) -> str:
    inc = cluster.get("Incident", namespace, name)
    if inc is None:
        raise CommandError(f"no Incident {namespace}/{name}")
    return timeline(inc)


def _attempt(inc: Obj) -> int:
    return int((inc.get("status") or {}).get("attempts") or 0) + 1


def _who() -> str:
    try:
        return os.environ.get("SRE_OPERATOR_USER") or getpass.getuser()
    except (KeyError, OSError):  # no password-database entry for the uid (a container)
        return f"uid-{os.getuid()}"


def decide(cluster: Cluster, namespace: str, name: str, *, approve: bool, attempt: int | None = None) -> str:
    """Approve (or reject) the attempt waiting for approval: the annotation names that attempt, so
    it never approves a later one, and says who decided."""
    inc = cluster.get("Incident", namespace, name)
    if inc is None:
        raise CommandError(f"no Incident {namespace}/{name}")
    phase = (inc.get("status") or {}).get("phase")
    if phase != Phase.AWAITING_APPROVAL:
        raise CommandError(f"Incident {namespace}/{name} is {phase or 'new'}, not waiting for approval")
    waiting = _attempt(inc)
    if attempt is not None and attempt != waiting:
        raise CommandError(f"Incident {namespace}/{name} waits for approval of attempt {waiting}, not {attempt}")
    key = APPROVE_ANNOTATION if approve else REJECT_ANNOTATION
    annotations: dict[str, Any] = {key: f"attempt-{waiting}", APPROVED_BY_ANNOTATION: _who()}
    cluster.patch("Incident", namespace, name, "merge", {"metadata": {"annotations": annotations}})
    return f"{'approved' if approve else 'rejected'} attempt {waiting} of {namespace}/{name}"
