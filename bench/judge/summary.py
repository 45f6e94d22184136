"""Pure: per case and overall statistics of the judged runs, and the tables (text and Markdown)."""
from __future__ import annotations

import statistics
from collections.abc import Sequence

from .oracle import HEALED, HEALED_COLLATERAL, INVALID


def _median(xs: Sequence[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def _max(xs: Sequence[float]) -> float | None:
    return round(max(xs), 1) if xs else None


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 2) if d else None


def stats(runs: Sequence[dict]) -> dict:
    judged = [r for r in runs if r["verdict"] != INVALID]
    healed = [r for r in judged if r["verdict"] in (HEALED, HEALED_COLLATERAL)]
    clean = [r for r in judged if r["verdict"] == HEALED]
    detected = [r for r in judged if r.get("diagnosis")]
    ttd = [r["timeToDetectSeconds"] for r in judged if r.get("timeToDetectSeconds") is not None]
    onset = [r["timeToDetectFromOnsetSeconds"] for r in judged if r.get("timeToDetectFromOnsetSeconds") is not None]
    ttm = [r["timeToMitigateSeconds"] for r in healed if r.get("timeToMitigateSeconds") is not None]
    return {
        "runs": len(runs), "invalid": len(runs) - len(judged), "healed": len(healed),
        "successRate": _rate(len(clean), len(judged)),  # healed with no collateral
        "healedRate": _rate(len(healed), len(judged)),
        "detected": len(detected),
        "diagnosisAccuracy": _rate(sum(1 for r in detected if r["diagnosis"] == "right"), len(detected)),
        "collateralChanges": sum(len(r.get("collateral") or []) for r in runs),
        "falsePositivesBeforeFault": sum(r.get("incidentsBeforeFault", 0) for r in runs),
        "ttdMedianSeconds": _median(ttd), "ttdWorstSeconds": _max(ttd),
        "ttdFromOnsetMedianSeconds": _median(onset),
        "ttmMedianSeconds": _median(ttm), "ttmWorstSeconds": _max(ttm),
        "actionsPerRun": round(statistics.mean(sum(1 for c in r.get("changes") or [] if "incident" in c["sources"])
                                               for r in runs), 1) if runs else 0,
        "llmTokens": sum(r["llm"]["promptTokens"] + r["llm"]["completionTokens"] for r in runs),
    }


def summarise(runs: Sequence[dict], cases: Sequence[str], control: dict | None) -> dict:
    per_case = [{"case": c, **stats([r for r in runs if r["case"] == c])} for c in cases]
    overall = stats(runs)
    if control is not None:
        overall["controlFalsePositiveIncidents"] = control["falsePositiveIncidents"]
        overall["controlFalsePositiveChanges"] = control["falsePositiveChanges"]
        overall["controlMinutes"] = control["minutes"]
    return {"perCase": per_case, "overall": overall}


def merge(reports: Sequence[dict], names: Sequence[str]) -> dict:
    """Several reports as one: a later report's runs of a case replace an earlier one's (a part
    re-run after a fix of the benchmark itself); the replaced runs are kept, with where they came
    from, under `replaced`; the control is the first report's that has one; the summary is
    recomputed over the runs kept."""
    kept: dict[str, list[dict]] = {}
    origin: dict[str, str] = {}
    replaced: list[dict] = []
    for name, report in zip(names, reports, strict=True):
        mine: dict[str, list[dict]] = {}
        for run in report.get("runs") or []:
            mine.setdefault(run["case"], []).append(run)
        for case, runs in mine.items():
            if case in kept:
                replaced += [{"from": origin[case], "case": case, "verdict": r.get("verdict"),
                              "reason": r.get("reason")} for r in kept[case]]
            kept[case], origin[case] = runs, name
    control = next((r["control"] for r in reports if r.get("control")), None)
    runs = [r for case in kept for r in kept[case]]
    cases = list(kept)
    return {"parts": [{"file": n, "cases": [c for c in cases if origin[c] == n]} for n in names],
            "replaced": replaced, "settings": reports[0].get("settings") if reports else None,
            "control": control, "runs": runs, "summary": summarise(runs, cases, control)}


COLUMNS = (("case", "case"), ("runs", "runs"), ("healed", "healed"), ("successRate", "success"),
           ("diagnosisAccuracy", "diagnosis"), ("collateralChanges", "collateral"),
           ("falsePositivesBeforeFault", "FP"), ("ttdMedianSeconds", "TTD p50 s"),
           ("ttdWorstSeconds", "TTD max s"), ("ttdFromOnsetMedianSeconds", "TTD onset p50 s"),
           ("ttmMedianSeconds", "TTM p50 s"), ("ttmWorstSeconds", "TTM max s"),
           ("actionsPerRun", "actions/run"), ("llmTokens", "tokens"))


def _cell(v: object) -> str:
    return "–" if v is None else str(v)


def rows(summary: dict) -> list[list[str]]:
    out = [[_cell(r.get(k)) for k, _ in COLUMNS] for r in summary["perCase"]]
    out.append([_cell({**summary["overall"], "case": "all"}.get(k)) for k, _ in COLUMNS])
    return out


def text_table(summary: dict) -> str:
    head = [h for _, h in COLUMNS]
    body = rows(summary)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [head, *body]]
    o = summary["overall"]
    if "controlMinutes" in o:
        lines.append(f"control: {o['controlMinutes']} min without a fault: {o['controlFalsePositiveIncidents']} "
                     f"Incident(s), {o['controlFalsePositiveChanges']} change(s) (false positives)")
    return "\n".join(lines)


def markdown_table(summary: dict) -> str:
    head = [h for _, h in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(summary)]
    o = summary["overall"]
    if "controlMinutes" in o:
        lines.append("")
        lines.append(f"No-fault control, {o['controlMinutes']} min: {o['controlFalsePositiveIncidents']} "
                     f"Incident(s), {o['controlFalsePositiveChanges']} change(s) (each a false positive).")
    return "\n".join(lines)
