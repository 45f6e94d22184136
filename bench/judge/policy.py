"""Pure: the planner policies the benchmark compares (`--planner`, `--model`), the operator's
environment for each, the model's figures of one run read from its Incidents, and the table per policy.

The Incidents' `status.llm`, `status.diagnosis` and `status.plan` are the operator's own words: they
give what the model cost and who diagnosed and who planned (attribution, and the suspect it named,
judged against the case's faulty objects), never the verdict, which stays the oracle's."""
from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .collateral import parse_time, workload_of_pod
from .objects import Key
from .oracle import HEALED, HEALED_COLLATERAL, INVALID
from .summary import stats

PLANNERS = ("rules", "hybrid", "llm")  # the operator's PlannerPolicy values
MODELS = ("1.5b", "0.5b")  # the provisioned GGUFs (localkube.binaries MODEL_1_5B, MODEL_0_5B)
DEFAULT_MODEL = "1.5b"
# charts/llm in the bench cluster, published like the shop's 30080 and Prometheus's 30090: a
# NodePort mapped to a port on 127.0.0.1 alone, where the operator (a host process) reaches it.
LLM_NAMESPACE, LLM_RELEASE, LLM_NODE_PORT = "llm", "llm", 30081
LLM_ALIAS = "local"  # charts/llm `model.alias`: the model name the server answers to
# As the demo's (scripts/demo.py LOCAL_LLM_TIMEOUT_SECONDS): one call takes 40–60 s on 2 cores, and
# the server has one slot, so a call may wait for another.
LLM_TIMEOUT_SECONDS = 300
RSS_HOW = ("VmHWM (/proc/PID/status) of the llama-server process listed in its container's cgroup "
           "(pids controller): the process's own high-water mark, file pages of the mapped model included; "
           "the cgroup's memory.max_usage_in_bytes is not used (it counts page cache and misses the model's "
           "pages when another cgroup read the file first). Read at the end of each run; a restart resets "
           "it (restarts are recorded).")


@dataclass(frozen=True)
class Policy:
    """`planner` None: the operator's default (hybrid, which plans with the rules alone when no model
    is configured); `model` None: no model server, none configured."""

    planner: str | None = None
    model: str | None = None

    @classmethod
    def of(cls, planner: str | None, model: str | None) -> Policy:
        """From the command line: hybrid and llm with no model named get the 1.5B (with none, the
        operator would plan with the rules alone and the run would measure nothing of the model)."""
        if planner is not None and planner not in PLANNERS:
            raise ValueError(f"planner {planner!r}: one of {', '.join(PLANNERS)}")
        if model is not None and model not in MODELS:
            raise ValueError(f"model {model!r}: one of {', '.join(MODELS)}")
        if planner in ("hybrid", "llm") and model is None:
            model = DEFAULT_MODEL
        return cls(planner, model)

    @property
    def label(self) -> str:
        name = self.planner or "default"
        return f"{name} ({self.model})" if self.model else name

    def env(self, base_url: str | None = None) -> dict[str, str]:
        """The operator's variables beyond its defaults: the planner when one is named; the model's
        server when there is one. No key: a base URL alone makes the operator use a model, and the
        bench's llama-server asks none."""
        env: dict[str, str] = {}
        if self.planner:
            env["SRE_OPERATOR_PLANNER"] = self.planner
        if self.model:
            if not base_url:
                raise ValueError(f"the {self.model} model needs its server's URL")
            env.update({"SRE_OPERATOR_LLM_BASE_URL": base_url, "SRE_OPERATOR_LLM_MODEL": LLM_ALIAS,
                        "SRE_OPERATOR_LLM_TIMEOUT_SECONDS": str(LLM_TIMEOUT_SECONDS)})
        return env

    def as_dict(self) -> dict:
        return {"planner": self.planner, "model": self.model, "label": self.label}


def masked(env: dict[str, str]) -> dict[str, str]:
    """For the report: a variable whose name says KEY shows asterisks."""
    return {k: ("***" if "KEY" in k.upper() and v else v) for k, v in env.items()}


def vm_hwm_mib(status_text: str) -> float | None:
    """VmHWM of a /proc/PID/status text, in MiB (None: no such line, e.g. a kernel thread)."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def server_peak_mib(statuses: Iterable[str], program: str = "llama-server") -> float | None:
    """The model server's peak RSS from the /proc/PID/status texts of its container's processes: the
    process named `program` (a shim or a helper beside it is not the server), else the largest."""
    named: list[float] = []
    others: list[float] = []
    for text in statuses:
        name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Name:")), "")
        hwm = vm_hwm_mib(text)
        if hwm is not None:
            (named if name == program[:15] else others).append(hwm)  # Name: is cut to 15 characters
    got = named or others
    return max(got) if got else None


# -- one run's model figures, from its Incidents -------------------------------------------------------

def _suspect_verdict(suspect: dict | None, faulty: Sequence[Key], services: Sequence[str]) -> str | None:
    """The diagnosis's suspect against the case: right when it is a faulty object or names a faulty
    workload (its Deployment, its Service, one of its pods)."""
    if not suspect or not suspect.get("kind") or not suspect.get("name"):
        return None
    kind, name = suspect["kind"], suspect["name"]
    if (kind, name) in set(faulty):
        return "right"
    workload = workload_of_pod(name) if kind == "Pod" else name if kind in ("Deployment", "Service") else None
    return "right" if workload in services else "wrong"


REASON_CHARS = 300  # of each reason kept in the JSON: the operator's words, for reading, never for a verdict


def fallback_reasons(reasons: Any) -> list[str]:
    """Why the model's answers fell back to the rules, as `stage: reason` lines, from the Incident's
    `status.llm.reasons` as it is (anything not a list of objects is skipped, each line cut short)."""
    if not isinstance(reasons, list):
        return []
    return [f"{r.get('stage') or '?'}: {str(r.get('reason') or '')[:REASON_CHARS]}"
            for r in reasons if isinstance(r, dict)]


def run_figures(incidents: Sequence[dict], fault_at: float, faulty: Sequence[Key] = (),
                services: Sequence[str] = ()) -> dict:
    """Cost and attribution of one run: every Incident's model calls and tokens (all of them, as the
    oracle's `llm`), the seconds of each question to the model, and of the Incidents opened since
    the fault: who diagnosed the first and whether its suspect was right, who planned each (the
    current attempt's planner: the status keeps only that plan)."""
    incs = sorted(incidents, key=lambda i: (i.get("metadata") or {}).get("creationTimestamp") or "")
    rows: list[dict[str, Any]] = []
    for i in incs:
        st = i.get("status") or {}
        llm, diag, plan = st.get("llm") or {}, st.get("diagnosis") or {}, st.get("plan") or {}
        created = parse_time((i.get("metadata") or {}).get("creationTimestamp"))
        rows.append({
            "name": (i.get("metadata") or {}).get("name"),
            "afterFault": created is None or created >= int(fault_at),
            "calls": int(llm.get("calls") or 0),
            "promptTokens": int(llm.get("promptTokens") or 0),
            "completionTokens": int(llm.get("completionTokens") or 0),
            "callSeconds": [float(x) for x in llm.get("callSeconds") or []],
            "fallbacks": int(llm.get("fallbacks") or 0),
            "fallbackReasons": fallback_reasons(llm.get("reasons")),
            "diagnosedBy": diag.get("diagnosedBy"),
            "diagnosisPending": bool(diag.get("pendingSince")),
            "suspect": (f"{diag['suspect'].get('kind')}/{diag['suspect'].get('name')}"
                        if isinstance(diag.get("suspect"), dict) else None),
            "suspectVerdict": _suspect_verdict(diag.get("suspect"), faulty, services),
            "planner": plan.get("planner"),
            "planAttempt": plan.get("attempt"),
            "planActions": len(plan.get("actions") or []),
        })
    after = [r for r in rows if r["afterFault"]]
    first = after[0] if after else None
    return {
        "incidents": len(rows),
        "calls": sum(r["calls"] for r in rows),
        "promptTokens": sum(r["promptTokens"] for r in rows),
        "completionTokens": sum(r["completionTokens"] for r in rows),
        "tokens": sum(r["promptTokens"] + r["completionTokens"] for r in rows),
        "callSeconds": [s for r in rows for s in r["callSeconds"]],
        "fallbacks": sum(r["fallbacks"] for r in rows),
        "diagnosedBy": first["diagnosedBy"] if first else None,
        "suspect": first["suspectVerdict"] if first else None,
        "planners": sorted({r["planner"] for r in after if r["planner"]}),
        "modelPlanned": any(r["planner"] == "llm" for r in after),
        "perIncident": rows,
    }


# -- the table per policy --------------------------------------------------------------------------------

def _median(xs: Sequence[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 2) if d else None


def _model(run: dict) -> dict:
    """The run's model figures; a report from before them: its tokens and Incidents alone."""
    if run.get("model"):
        return run["model"]
    llm = run.get("llm") or {}
    return {"incidents": len(run.get("incidents") or []), "calls": int(llm.get("calls") or 0),
            "tokens": int(llm.get("promptTokens") or 0) + int(llm.get("completionTokens") or 0),
            "callSeconds": [], "planners": [], "diagnosedBy": None, "suspect": None, "modelPlanned": False}


def label(report: dict) -> str:
    return (report.get("policy") or {}).get("label") or "default"


def policy_stats(report: dict, cases: Iterable[str] | None = None) -> dict:
    """One policy's figures over its runs (of `cases` only, when given)."""
    keep = None if cases is None else set(cases)
    runs = [r for r in report.get("runs") or [] if keep is None or r["case"] in keep]
    base = stats(runs)
    models = [_model(r) for r in runs]
    incidents = sum(m.get("incidents") or 0 for m in models)
    seconds = [float(s) for m in models for s in m.get("callSeconds") or []]
    suspects = [m["suspect"] for m in models if m.get("suspect")]
    peaks = [(r.get("modelServer") or {}).get("peakRssMiB") for r in runs]
    peaks += [(report.get("modelServer") or {}).get("peakRssMiB")] if keep is None else []
    peaks_known = [p for p in peaks if p is not None]
    return {
        "policy": label(report), "runs": base["runs"], "invalid": base["invalid"], "healed": base["healed"],
        "healedRate": base["healedRate"], "diagnosisAccuracy": base["diagnosisAccuracy"],
        "suspectAccuracy": _rate(sum(1 for s in suspects if s == "right"), len(suspects)),
        "collateralChanges": base["collateralChanges"],
        "ttmMedianSeconds": base["ttmMedianSeconds"], "ttmWorstSeconds": base["ttmWorstSeconds"],
        "incidents": incidents, "modelCalls": sum(m.get("calls") or 0 for m in models),
        "tokensPerIncident": round(sum(m.get("tokens") or 0 for m in models) / incidents) if incidents else None,
        "secondsPerCallMedian": _median(seconds), "secondsPerCallWorst": round(max(seconds), 1) if seconds else None,
        "modelRssPeakMiB": max(peaks_known) if peaks_known else None,
    }


def uncovered_cases(reports: Sequence[dict]) -> list[str] | None:
    """The cases no rule covers: those where, under the hybrid policy, an Incident's plan came from the
    model (the hybrid asks it to plan when no rule matches the evidence; at a later attempt also when the
    rules' plan was undone: `perIncident[].planAttempt` tells). None: no hybrid report."""
    hybrid = [r for r in reports if (r.get("policy") or {}).get("planner") == "hybrid"]
    if not hybrid:
        return None
    out: list[str] = []
    for rep in hybrid:
        for run in rep.get("runs") or []:
            if _model(run).get("modelPlanned") and run["case"] not in out:
                out.append(run["case"])
    return out


def _acted(runs: Sequence[dict]) -> str:
    """One policy's runs of one case: healed/judged, who planned, who diagnosed the first Incident."""
    judged = [r for r in runs if r["verdict"] != INVALID]
    if not runs:
        return "–"
    if not judged:
        return "invalid"
    healed = sum(1 for r in judged if r["verdict"] in (HEALED, HEALED_COLLATERAL))
    planners = sorted({p for r in judged for p in _model(r).get("planners") or []})
    diag = sorted({d for r in judged if (d := _model(r).get("diagnosedBy"))})
    return (f"{healed}/{len(judged)} healed · plan {'+'.join(planners) or '–'} · "
            f"diagnosis {'+'.join(diag) or '–'}")


COLUMNS = (("policy", "policy"), ("runs", "runs"), ("healedRate", "healed"),
           ("diagnosisAccuracy", "diagnosis"), ("suspectAccuracy", "suspect"),
           ("collateralChanges", "collateral"), ("ttmMedianSeconds", "TTM p50 s"), ("ttmWorstSeconds", "TTM max s"),
           ("tokensPerIncident", "tokens/incident"), ("secondsPerCallMedian", "s/call p50"),
           ("secondsPerCallWorst", "s/call max"), ("modelRssPeakMiB", "model RSS MiB"))


def _cell(v: object) -> str:
    return "–" if v is None else str(v)


def tables(reports: Sequence[dict]) -> dict:
    """Everything the policy table shows: a row per policy, per case who acted under each policy, and
    the cases no rule covers with each policy's figures on them alone."""
    cases: list[str] = []
    for rep in reports:
        for run in rep.get("runs") or []:
            if run["case"] not in cases:
                cases.append(run["case"])
    uncovered = uncovered_cases(reports)
    return {
        "policies": [policy_stats(r) for r in reports],
        "perCase": [{"case": c, **{label(r): _acted([x for x in r.get("runs") or [] if x["case"] == c])
                                   for r in reports}} for c in cases],
        "uncovered": uncovered,
        "onUncovered": [policy_stats(r, uncovered) for r in reports] if uncovered else [],
    }


def _text(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in [head, *body]]


def _md(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |",
            *("| " + " | ".join(r) + " |" for r in body)]


NOTES = ("healed: rate of judged runs healed by the benchmark's oracle; diagnosis: the first Incident's "
         "service (the detector's); suspect: the first Incident's status.diagnosis.suspect against the faulty "
         "objects (the diagnosis of whoever diagnosed); tokens and s/call: from the Incidents' status.llm "
         "(cost and attribution only, never the verdict); model RSS: peak of the llama-server process.")


def render(reports: Sequence[dict], markdown: bool = False) -> str:
    t = tables(reports)
    fmt = _md if markdown else _text
    head = [h for _, h in COLUMNS]
    lines = fmt(head, [[_cell(row.get(k)) for k, _ in COLUMNS] for row in t["policies"]])
    lines += ["", NOTES, ""]
    names = [label(r) for r in reports]
    lines += fmt(["case", *names], [[row["case"], *(row[n] for n in names)] for row in t["perCase"]])
    lines.append("")
    if t["uncovered"] is None:
        lines.append("Cases no rule covers: no hybrid run among these reports, so none found.")
    elif not t["uncovered"]:
        lines.append("Cases no rule covers: none (under hybrid, every plan came from a rule).")
    else:
        lines.append(f"Cases no rule covers (under hybrid, a plan came from the model): {', '.join(t['uncovered'])}; "
                     "each policy on those cases alone:")
        lines.append("")
        lines += fmt(head, [[_cell(row.get(k)) for k, _ in COLUMNS] for row in t["onUncovered"]])
    return "\n".join(lines)
