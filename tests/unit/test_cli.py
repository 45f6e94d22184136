"""The command line: `run`'s namespaces parsed whichever way they are written, and the commands for
people (list, describe, approve, reject) over an in-memory cluster."""
from __future__ import annotations

import pytest

from sre_operator import cli
from sre_operator.main import parser
from tests.fakes.cluster import MemoryCluster


@pytest.mark.parametrize(("argv", "namespaces"), [
    (["run", "--namespace", "shop"], ["shop"]),  # with a space: it was silently ignored (cluster-wide)
    (["run", "--namespace=shop", "-n", "other"], ["shop", "other"]),
    (["run", "--all-namespaces"], []),
    (["run"], []),
])
def test_run_parses_its_namespaces(argv: list[str], namespaces: list[str]) -> None:
    args = parser().parse_args(argv)
    assert args.command == "run" and args.namespace == namespaces


def test_run_refuses_a_namespace_and_all_namespaces_together_and_unknown_options(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["run", "-n", "shop", "-A"], ["run", "--namespaces=shop"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            parser().parse_args(argv)
        assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def incident(cluster: MemoryCluster, name: str = "payment-unavailable-1", **status: object) -> None:
    cluster.create("Incident", "shop", {"metadata": {"name": name},
                                        "spec": {"service": "payment", "symptom": "unavailable"}})
    if status:
        cluster.patch_status("Incident", "shop", name, dict(status))


def test_the_table_and_the_timeline() -> None:
    c = MemoryCluster()
    incident(c, phase="Resolved", attempts=1, timeToDetect="4.0s", timeToMitigate="31.5s",
             timeline=[{"at": "2026-01-01T12:00:00Z", "phase": "Triaging", "message": "payment: unavailable"}],
             diagnosis={"rootCause": "revision 3 crashes", "confidence": 0.8, "planner": "rules"},
             actions=[{"attempt": 1, "type": "rollback", "target": {"kind": "Deployment", "name": "payment"},
                       "outcome": "applied", "message": "roll back deployment/payment to revision 2"}],
             validation=[{"attempt": 1, "verdict": "better", "message": "within SLO"}])
    lines = cli.table(c.list_objects("Incident", "shop")).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "SERVICE", "SYMPTOM", "PHASE", "ATTEMPTS", "TTD", "TTM", "AGE"]
    assert lines[1].split()[:8] == ["shop", "payment-unavailable-1", "payment", "unavailable", "Resolved", "1",
                                    "4.0s", "31.5s"]
    text = cli.describe(c, "shop", "payment-unavailable-1")
    for part in ("Triaging", "revision 3 crashes", "rollback Deployment/payment → applied", "better within SLO"):
        assert part in text
    with pytest.raises(cli.CommandError, match="no Incident"):
        cli.describe(c, "shop", "nope")


def test_describe_shows_the_diagnosis_and_what_the_model_cost() -> None:
    c = MemoryCluster()
    incident(c, phase="DryRun",
             diagnosis={"summary": "payment is down", "rootCause": "revision 3 crashes", "confidence": 0.7,
                        "suspect": {"kind": "Deployment", "name": "payment"}, "evidence": ["0/1 ready"],
                        "diagnosedBy": "llm", "planner": "rules", "fallbackReason": "the plan names deployment/x"},
             llm={"model": "qwen", "calls": 2, "promptTokens": 900, "completionTokens": 80, "callSeconds": [1.5, 0.4],
                  "fallbacks": 1, "reasons": [{"stage": "planning", "reason": "the plan names deployment/x"}]})
    text = cli.describe(c, "shop", "payment-unavailable-1")
    for part in ("Diagnosis (by llm; untrusted text, shown only)", "payment is down", "suspect: deployment/payment",
                 "- 0/1 ready", "planned by rules", "the model's plan was not used: the plan names deployment/x",
                 "Model: qwen, 2 call(s), 900 prompt + 80 completion tokens, took 1.5s, 0.4s",
                 "rules used at planning: the plan names deployment/x"):
        assert part in text, part


def test_describe_says_the_model_s_diagnosis_is_awaited() -> None:
    c = MemoryCluster()
    incident(c, phase="Validating", diagnosis={"summary": "payment: unavailable", "rootCause": "scaled to 0",
                                               "diagnosedBy": "rules", "pendingSince": "2026-01-01T12:00:00Z"})
    text = cli.describe(c, "shop", "payment-unavailable-1")
    assert "Diagnosis (by rules; untrusted text, shown only)" in text
    assert "the model's diagnosis, asked in the background at 2026-01-01T12:00:00Z, has not come yet" in text


def test_an_approval_names_the_waiting_attempt_and_who_gave_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_USER", "alice")
    c = MemoryCluster()
    incident(c, phase="AwaitingApproval", attempts=1)
    with pytest.raises(cli.CommandError, match="waits for approval of attempt 2, not 1"):
        cli.decide(c, "shop", "payment-unavailable-1", approve=True, attempt=1)
    said = cli.decide(c, "shop", "payment-unavailable-1", approve=True)
    assert said == "approved attempt 2 of shop/payment-unavailable-1"
    annotations = (c.get("Incident", "shop", "payment-unavailable-1") or {})["metadata"]["annotations"]
    assert annotations == {cli.APPROVE_ANNOTATION: "attempt-2", cli.APPROVED_BY_ANNOTATION: "alice"}


def test_only_an_incident_waiting_for_approval_can_be_approved_or_rejected() -> None:
    c = MemoryCluster()
    incident(c, phase="Mitigating")
    for approve in (True, False):
        with pytest.raises(cli.CommandError, match="is Mitigating, not waiting for approval"):
            cli.decide(c, "shop", "payment-unavailable-1", approve=approve)
    with pytest.raises(cli.CommandError, match="no Incident"):
        cli.decide(c, "shop", "missing", approve=True)
    assert not [w for w in c.writes if w[0] == "patch"]
