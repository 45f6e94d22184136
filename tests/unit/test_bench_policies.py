"""The benchmark's planner policies (no cluster): the operator's environment for each policy, the model's
figures of a run read from its Incidents, the model server's peak RSS, and the table per policy."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from bench import scenarios
from bench.judge import oracle
from bench.judge import policy as pol
from bench.judge.runner import Bench
from bench.judge.settings import Settings as BenchSettings
from sre_operator.settings import Settings as OperatorSettings

T0 = 1_700_000_000.0
URL = "http://127.0.0.1:41234/v1"


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the operator's environment per policy ------------------------------------------------------------

def test_each_policy_sets_only_what_it_needs_beyond_the_defaults() -> None:
    assert pol.Policy.of(None, None).env() == {}  # today's run: the operator's defaults
    assert pol.Policy.of("rules", None).env() == {"SRE_OPERATOR_PLANNER": "rules"}
    hybrid = pol.Policy.of("hybrid", None)
    assert hybrid.model == "1.5b" and hybrid.label == "hybrid (1.5b)"
    assert hybrid.env(URL) == {"SRE_OPERATOR_PLANNER": "hybrid", "SRE_OPERATOR_LLM_BASE_URL": URL,
                               "SRE_OPERATOR_LLM_MODEL": "local", "SRE_OPERATOR_LLM_TIMEOUT_SECONDS": "300"}
    small = pol.Policy.of("llm", "0.5b")
    assert small.env(URL)["SRE_OPERATOR_PLANNER"] == "llm" and small.label == "llm (0.5b)"
    with pytest.raises(ValueError, match="URL"):
        small.env(None)
    with pytest.raises(ValueError, match="planner 'magic'"):
        pol.Policy.of("magic", None)
    assert pol.masked({"SRE_OPERATOR_LLM_API_KEY": "sk-1", "SRE_OPERATOR_PLANNER": "llm"}) == {
        "SRE_OPERATOR_LLM_API_KEY": "***", "SRE_OPERATOR_PLANNER": "llm"}


def bench(tmp_path: Path, policy: pol.Policy) -> Bench:
    b = Bench(BenchSettings(), tmp_path, policy)
    ports = {"172.30.0.2:30080": 40080, "172.30.0.2:30090": 40090, "172.30.0.2:30081": 40081}
    (tmp_path / "state.json").write_text(json.dumps({"pids": {}, "ports": ports}))
    return b


def operator_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    """The operator's Settings as it would read them from `env`."""
    for k in list(os.environ):
        if k.startswith("SRE_OPERATOR_") or k == "OPENAI_API_KEY":
            monkeypatch.delenv(k)
    for k, v in env.items():
        if k.startswith("SRE_OPERATOR_"):
            monkeypatch.setenv(k, v)
    return OperatorSettings()


def test_the_operator_reads_the_policy_and_reaches_the_model_on_loopback(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_PLANNER", "rules")  # the caller's own settings never reach the operator
    monkeypatch.setenv("OPENAI_API_KEY", "sk-caller")
    b = bench(tmp_path, pol.Policy.of("llm", None))
    assert [m.node_port for m in b.cluster.mappings] == [30080, 30090, pol.LLM_NODE_PORT]
    b.model_url = f"http://127.0.0.1:{b.cluster.host_port(pol.LLM_NODE_PORT)}/v1"
    env = b.operator_env()
    assert "OPENAI_API_KEY" not in env and env["SRE_OPERATOR_PLANNER"] == "llm"
    s = operator_settings(env, monkeypatch)
    cfg = s.llm_config()
    assert s.planner == "llm" and cfg is not None
    assert (cfg.base_url, cfg.model, cfg.timeout_seconds) == ("http://127.0.0.1:40081/v1", "local", 300)


def test_no_policy_keeps_todays_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = bench(tmp_path, pol.Policy())
    assert [m.node_port for m in b.cluster.mappings] == [30080, 30090]
    env = b.operator_env()
    assert not any(k.startswith("SRE_OPERATOR_LLM") or k == "SRE_OPERATOR_PLANNER" for k in env)
    s = operator_settings(env, monkeypatch)
    assert s.llm_config() is None and s.planner == "hybrid"
    assert b.model_server() == {}


# -- one run's model figures from its Incidents -------------------------------------------------------

def incident(name: str, created: float, llm: dict | None = None, diagnosed_by: str | None = "rules",
             suspect: dict | None = None, planner: str | None = "rules", attempt: int = 1,
             pending: bool = False) -> dict:
    diag: dict = {"diagnosedBy": diagnosed_by} if diagnosed_by else {}
    if suspect:
        diag["suspect"] = suspect
    if pending:
        diag["pendingSince"] = iso(created + 5)
    status: dict = {"phase": "Resolved", "llm": llm or {}, "diagnosis": diag}
    if planner:
        status["plan"] = {"planner": planner, "attempt": attempt, "actions": [{"type": "rollback"}]}
    return {"metadata": {"name": name, "creationTimestamp": iso(created)}, "spec": {"service": "payment"},
            "status": status}


def test_model_figures_come_from_every_incident_and_attribution_from_those_after_the_fault() -> None:
    fault = T0 + 100
    incs = [
        incident("late", fault + 30, {"calls": 1, "promptTokens": 100, "completionTokens": 10,
                                      "callSeconds": [41.0]}, planner="rules"),
        incident("first", fault + 10, {"calls": 3, "promptTokens": 2000, "completionTokens": 300,
                                       "callSeconds": [44.5, 58.0], "fallbacks": 1}, diagnosed_by="llm",
                 suspect={"kind": "Pod", "name": "payment-7c9d8f-abcde"}, planner="llm"),
        incident("before", fault - 50, {"calls": 1, "promptTokens": 500, "completionTokens": 50,
                                        "callSeconds": [50.0]}, diagnosed_by="llm", planner="llm"),
    ]
    m = pol.run_figures(incs, fault, faulty=[("Deployment", "payment")], services=["payment"])
    assert (m["incidents"], m["calls"], m["tokens"], m["fallbacks"]) == (3, 5, 2960, 1)
    assert sorted(m["callSeconds"]) == [41.0, 44.5, 50.0, 58.0]
    assert m["diagnosedBy"] == "llm" and m["suspect"] == "right"  # the first Incident since the fault
    assert m["planners"] == ["llm", "rules"] and m["modelPlanned"]
    assert [r["name"] for r in m["perIncident"]] == ["before", "first", "late"]
    assert m["perIncident"][1]["suspect"] == "Pod/payment-7c9d8f-abcde"
    assert [r["fallbackReasons"] for r in m["perIncident"]] == [[], [], []]
    # The plan before the fault is a false positive's, not the case's: the rules planned every one since.
    only_rules = pol.run_figures(incs[::2], fault, services=["payment"])
    assert only_rules["planners"] == ["rules"] and not only_rules["modelPlanned"]
    assert only_rules["diagnosedBy"] == "rules" and only_rules["suspect"] is None  # no suspect named


def test_why_the_model_fell_back_is_kept_per_incident_as_the_status_has_it() -> None:
    reasons = [{"at": iso(T0), "stage": "plan", "reason": "rollback of payment: not the revision last seen healthy"},
               {"stage": "diagnosis", "reason": "x" * 5000}, "not an object", {"reason": None}]
    [row] = pol.run_figures([incident("one", T0, {"calls": 2, "fallbacks": 2, "reasons": reasons})],
                            T0 - 10)["perIncident"]
    assert row["fallbackReasons"] == ["plan: rollback of payment: not the revision last seen healthy",
                                      "diagnosis: " + "x" * pol.REASON_CHARS, "?: "]
    assert pol.fallback_reasons({"stage": "plan"}) == [] and pol.fallback_reasons(None) == []


@pytest.mark.parametrize(("suspect", "verdict"), [
    ({"kind": "ConfigMap", "name": "gateway-config"}, "right"),  # a faulty object itself
    ({"kind": "Deployment", "name": "gateway"}, "right"),  # the faulty workload
    ({"kind": "Service", "name": "order"}, "wrong"),
    ({"kind": "ConfigMap", "name": "other"}, "wrong"),
])
def test_the_suspect_is_judged_against_the_case(suspect: dict, verdict: str) -> None:
    inc = incident("i", T0 + 10, diagnosed_by="llm", suspect=suspect)
    m = pol.run_figures([inc], T0, faulty=[("ConfigMap", "gateway-config")], services=["gateway"])
    assert m["suspect"] == verdict


def test_the_model_servers_peak_is_the_llama_server_processes_high_water_mark() -> None:
    shim = "Name:\tpython3\nVmRSS:\t9000 kB\nVmHWM:\t10240 kB\n"
    server = "Name:\tllama-server\nVmRSS:\t1500000 kB\nVmHWM:\t2048000 kB\n"
    assert pol.server_peak_mib([shim, server]) == 2000.0
    assert pol.server_peak_mib([shim]) == 10.0  # no process of that name: the largest
    assert pol.server_peak_mib(["Name:\tkthreadd\n"]) is None and pol.server_peak_mib([]) is None


# -- the table per policy ------------------------------------------------------------------------------

def run(case: str, verdict: str, ttm: float | None, model: dict | None, rss: float | None = None) -> dict:
    out = {"case": case, "verdict": verdict, "timeToDetectSeconds": 5.0, "timeToMitigateSeconds": ttm,
           "diagnosis": "right", "collateral": [], "changes": [], "incidentsBeforeFault": 0,
           "llm": {"promptTokens": 0, "completionTokens": 0}, "incidents": [{}]}
    if model is not None:
        out["model"] = {"incidents": 1, "calls": 0, "tokens": 0, "callSeconds": [], "planners": ["rules"],
                        "diagnosedBy": "rules", "suspect": "right", "modelPlanned": False, **model}
    if rss is not None:
        out["modelServer"] = {"peakRssMiB": rss, "restarts": 0}
    return out


def report(planner: str | None, model: str | None, runs: list[dict], peak: float | None = None) -> dict:
    p = pol.Policy.of(planner, model)
    return {"policy": p.as_dict(), "runs": runs,
            "modelServer": {"peakRssMiB": peak} if peak is not None else None}


def reports() -> list[dict]:
    rules = report("rules", None, [run("a", oracle.HEALED, 20, {}),
                                   run("b", oracle.NOT_HEALED, None, {"planners": []})])
    hybrid = report("hybrid", None, [
        run("a", oracle.HEALED, 22, {"calls": 1, "tokens": 1500, "callSeconds": [40.0], "diagnosedBy": "llm"},
            rss=1900.0),
        run("b", oracle.HEALED, 150, {"calls": 2, "tokens": 3500, "callSeconds": [44.0, 60.0],
                                      "planners": ["llm"], "diagnosedBy": "llm", "modelPlanned": True},
            rss=2010.5)], peak=1800.0)
    llm = report("llm", None, [
        run("a", oracle.HEALED_COLLATERAL, 130, {"calls": 2, "tokens": 3000, "callSeconds": [50.0, 52.0],
                                                 "planners": ["llm"], "diagnosedBy": "llm", "suspect": "wrong",
                                                 "modelPlanned": True}, rss=1950.0),
        run("b", oracle.HEALED, 170, {"incidents": 2, "calls": 3, "tokens": 5000, "callSeconds": [55.0, 58.0, 61.0],
                                      "planners": ["llm"], "diagnosedBy": "llm", "modelPlanned": True},
            rss=1990.0)])
    llm["runs"][0]["collateral"] = [{"kind": "Deployment", "name": "order"}]
    return [rules, hybrid, llm]


def test_one_row_per_policy() -> None:
    rows = {r["policy"]: r for r in pol.tables(reports())["policies"]}
    assert list(rows) == ["rules", "hybrid (1.5b)", "llm (1.5b)"]
    rules, hybrid, llm = rows.values()
    assert (rules["healedRate"], rules["tokensPerIncident"], rules["secondsPerCallMedian"],
            rules["modelRssPeakMiB"]) == (0.5, 0, None, None)
    assert (hybrid["healedRate"], hybrid["ttmMedianSeconds"], hybrid["ttmWorstSeconds"]) == (1.0, 86.0, 150)
    assert (hybrid["tokensPerIncident"], hybrid["modelCalls"]) == (2500, 3)
    assert (hybrid["secondsPerCallMedian"], hybrid["secondsPerCallWorst"], hybrid["modelRssPeakMiB"]) == (
        44.0, 60.0, 2010.5)
    assert (llm["collateralChanges"], llm["suspectAccuracy"], llm["tokensPerIncident"]) == (1, 0.5, 2667)
    assert llm["secondsPerCallMedian"] == 55.0 and llm["diagnosisAccuracy"] == 1.0


def test_per_case_who_acted_and_the_cases_no_rule_covers() -> None:
    t = pol.tables(reports())
    b = next(r for r in t["perCase"] if r["case"] == "b")
    assert b["rules"] == "0/1 healed · plan – · diagnosis rules"
    assert b["hybrid (1.5b)"] == "1/1 healed · plan llm · diagnosis llm"
    assert t["uncovered"] == ["b"]  # under hybrid the model planned b alone
    on = {r["policy"]: r for r in t["onUncovered"]}
    assert on["llm (1.5b)"]["runs"] == 1 and on["llm (1.5b)"]["ttmMedianSeconds"] == 170
    assert on["rules"]["healedRate"] == 0.0
    assert on["hybrid (1.5b)"]["modelRssPeakMiB"] == 2010.5  # its runs' own peak, not the report's


def test_the_table_renders_and_says_when_no_hybrid_run_was_given() -> None:
    md = pol.render(reports(), markdown=True).splitlines()
    assert md[0].startswith("| policy | runs | healed |") and "s/call p50" in md[0]
    assert md[2].startswith("| rules | 2 | 0.5 |") and md[4].startswith("| llm (1.5b) | 2 | 1.0 |")
    assert any(line.startswith("Cases no rule covers (under hybrid, a plan came from the model): b") for line in md)
    text = pol.render(reports()[::2])
    assert "no hybrid run among these reports" in text and text.splitlines()[0].startswith("policy")


def test_an_earlier_report_without_model_figures_still_has_a_row() -> None:
    old = {"runs": [{**run("a", oracle.HEALED, 20, None), "llm": {"promptTokens": 30, "completionTokens": 6}}]}
    row = pol.tables([old])["policies"][0]
    assert (row["policy"], row["runs"], row["tokensPerIncident"], row["secondsPerCallMedian"]) == (
        "default", 1, 36, None)


def test_the_command_line_prints_the_policy_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for rep in reports():
        f = tmp_path / f"policies-{rep['policy']['planner']}.json"
        f.write_text(json.dumps(rep))
        files.append(str(f))
    assert scenarios.main(["--policy-table", *files, "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| hybrid (1.5b) | 2 | 1.0 |" in out and "| case | rules | hybrid (1.5b) | llm (1.5b) |" in out
