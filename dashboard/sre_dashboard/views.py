"""What the dashboard shows, as pure functions of what the Kubernetes API and Prometheus say: the
service map with each node's health, the incident list and an incident's pipeline timeline, the
agents' log lines, and the marks (fault injected, incident detected, mitigated, resolved) on the
charts. No I/O here: `app.py` reads, these shape."""
from __future__ import annotations

from typing import Any

from sre_operator.domain.policy import Thresholds
from sre_operator.domain.topology import ROUTES_TO, SERVICES
from sre_operator.domain.vocabulary import TERMINAL, Phase

# A Kubernetes object or a Prometheus reading, as JSON.
Obj = dict[str, Any]
DEFAULT_THRESHOLDS = Thresholds()

NODES = SERVICES  # the operator's one description of the shop
EDGES = tuple((caller, callee) for caller, callees in ROUTES_TO.items() for callee in callees)
OPEN = {p.value for p in Phase if p not in TERMINAL}


def node_health(name: str, prom: dict[str, Any] | None, work: dict[str, Any] | None,
                prometheus_ok: bool, t: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """One node of the map: its figures and a status: `down` (no ready pod, or scaled to 0),
    `degraded` (errors or P95 over the SLO), `ok`, or `unknown` (no figures: never shown as ok)."""
    prom, work = prom or {}, work or {}
    desired, ready = work.get("desired"), work.get("ready")
    node: dict[str, Any] = {"name": name, "desired": desired, "ready": ready,
                            "errorRatio": prom.get("error_ratio"), "p95Seconds": prom.get("p95"),
                            "requestRate": prom.get("rate"), "saturation": prom.get("saturation")}
    if desired is not None and (desired == 0 or (ready or 0) == 0):
        node["status"], node["why"] = "down", f"{ready or 0}/{desired} ready"
        return node
    if not prometheus_ok:
        node["status"], node["why"] = "unknown", "Prometheus does not answer"
        return node
    reasons = []
    busy = (prom.get("rate") or 0) >= t.min_request_rate
    if busy and (prom.get("error_ratio") or 0) > t.error_ratio:
        reasons.append(f"{prom['error_ratio']:.0%} errors")
    if busy and (prom.get("p95") or 0) > t.p95_seconds:
        reasons.append(f"P95 {prom['p95'] * 1000:.0f} ms")
    if busy and (prom.get("unrouted_ratio") or 0) > t.unrouted_ratio:
        reasons.append(f"{prom['unrouted_ratio']:.0%} of {prom.get('unrouted_route')} unrouted")
    if reasons:
        node["status"], node["why"] = "degraded", ", ".join(reasons)
    elif not busy and name != "gateway" and prom.get("rate") is None:
        node["status"], node["why"] = "unknown", "no traffic measured"
    else:
        node["status"], node["why"] = "ok", ""
    return node


def service_map(prom: dict[str, Obj], work: dict[str, Obj], prometheus_ok: bool,
                t: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    nodes = [node_health(n, prom.get(n), work.get(n), prometheus_ok, t) for n in NODES]
    return {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in EDGES], "prometheus": prometheus_ok}


def incident_row(inc: Obj) -> dict[str, Any]:
    spec, st, meta = inc.get("spec") or {}, inc.get("status") or {}, inc["metadata"]
    return {"name": meta["name"], "service": spec.get("service"), "symptom": spec.get("symptom"),
            "summary": spec.get("summary", ""), "phase": st.get("phase") or "Detected",
            "open": (st.get("phase") or "Detected") in OPEN, "attempts": st.get("attempts", 0),
            "timeToDetect": st.get("timeToDetect"), "timeToMitigate": st.get("timeToMitigate"),
            "detectedAt": st.get("detectedAt") or meta.get("creationTimestamp"),
            "mitigatedAt": st.get("mitigatedAt"), "resolvedAt": st.get("resolvedAt"),
            "planner": (st.get("diagnosis") or {}).get("planner"),
            "message": st.get("message", "")}


HIDDEN = "(hidden: set SRE_DASHBOARD_EXPOSE_RECORDS=true to show)"
# Keys whose whole value stays out of the API: a pod template (its env, image, command), an
# action's intended write, a ConfigMap's data.
_HIDDEN_KEYS = frozenset({"template", "intent", "data", "stringData"})


def redact(value: Any) -> Any:
    """`value` without pod templates, intended writes, ConfigMap data or environment values (names
    stay, values go): what an undo record or a plan may carry, which a viewer of the page need not
    see and a page on a rebound name must not read."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in _HIDDEN_KEYS and v not in (None, "", {}, []):
                out[k] = HIDDEN
            elif k == "env" and isinstance(v, list):
                out[k] = [{"name": e.get("name"), "value": HIDDEN} if isinstance(e, dict) else HIDDEN for e in v]
            elif k == "env" and isinstance(v, dict):
                out[k] = dict.fromkeys(v, HIDDEN)
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def incident_detail(inc: Obj, expose_records: bool = False) -> dict[str, Any]:
    """Everything the pipeline recorded, in the order it happened: phases, symptoms, diagnosis,
    plan, each action with its result and undo record, validation before/after, LLM usage. Undo
    records' templates and data and every environment value are `redact`ed unless `expose_records`."""
    st = inc.get("status") or {}
    row = incident_row(inc)
    steps: list[dict[str, Any]] = [{"at": t.get("at"), "kind": "phase", "title": t.get("phase"),
                                    "text": t.get("message", "")} for t in st.get("timeline") or []]
    for a in st.get("actions") or []:
        target = a.get("target") or {}
        steps.append({"at": a.get("finishedAt") or a.get("startedAt"), "kind": "action",
                      "title": f"{a.get('type')} {str(target.get('kind', '')).lower()}/{target.get('name')}",
                      "text": f"{a.get('outcome')}: {a.get('message', '')}", "attempt": a.get("attempt"),
                      "undo": a.get("undo") or None})
    steps.extend({"at": v.get("at"), "kind": "validation",
                  "title": f"attempt {v.get('attempt')}: {v.get('verdict', 'measuring')}"
                           + (" (passed)" if v.get("passed") else ""),
                  "text": v.get("message", ""), "before": v.get("before"), "after": v.get("after")}
                 for v in st.get("validation") or [] if "verdict" in v or "after" in v)
    steps.extend({"at": u.get("at"), "kind": "undo", "title": f"undo {u.get('action')} {u.get('target')}",
                  "text": f"{u.get('outcome')}: {u.get('message', '')}"}
                 for u in st.get("undoLog") or [])
    steps.sort(key=lambda s: s.get("at") or "")
    diagnosis = st.get("diagnosis") or {}
    pending = diagnosis.get("pendingSince") if isinstance(diagnosis, dict) else None
    awaited = (f"asked in the background at {pending}, not in yet (the rules' diagnosis stands meanwhile)"
               if isinstance(pending, str) and pending else "")
    detail = {**row, "modelDiagnosis": awaited, "symptoms": st.get("symptoms") or [],
              "triageSummary": st.get("triageSummary", ""),
              "diagnosis": st.get("diagnosis") or {}, "plan": st.get("plan") or {}, "llm": st.get("llm") or {},
              "conditions": st.get("conditions") or [], "steps": steps}
    return detail if expose_records else dict(redact(detail))


def log_line(event: Obj) -> dict[str, Any] | None:
    """A Kubernetes Event about an Incident or a FaultScenario as a line of the agents' log."""
    obj = event.get("involvedObject") or event.get("regarding") or {}
    if obj.get("kind") not in ("Incident", "FaultScenario"):
        return None
    at = (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
          or (event.get("metadata") or {}).get("creationTimestamp"))
    return {"at": at, "type": event.get("type", "Normal"), "reason": event.get("reason", ""),
            "object": f"{obj.get('kind')}/{obj.get('name')}", "message": str(event.get("message") or "")[:1000],
            "uid": (event.get("metadata") or {}).get("uid")}


def markers(incidents: list[Obj], scenarios: list[Obj]) -> list[dict[str, Any]]:
    """Moments to mark on the charts: faults injected and reverted, incidents detected, mitigated
    and resolved (ISO times; the page places them on its time axis)."""
    out = []
    for s in scenarios:
        st, name = s.get("status") or {}, s["metadata"]["name"]
        if st.get("injectedAt"):
            out.append({"at": st["injectedAt"], "kind": "fault", "label": f"{s['spec'].get('type')} injected ({name})"})
        if st.get("revertedAt"):
            out.append({"at": st["revertedAt"], "kind": "reverted", "label": f"{name} reverted"})
    for inc in incidents:
        st, spec = inc.get("status") or {}, inc.get("spec") or {}
        what = f"{spec.get('service')} {spec.get('symptom')}"
        for key, kind in (("detectedAt", "detected"), ("mitigatedAt", "mitigated"), ("resolvedAt", "resolved")):
            if st.get(key):
                out.append({"at": st[key], "kind": kind, "label": f"{what} {kind}"})
    return sorted(out, key=lambda m: m["at"])
