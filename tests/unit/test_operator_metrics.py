"""The operator's own metrics ("watch the watcher"): Incidents driven through the in-memory cluster
by the real runner, with the real prometheus-client telemetry (`adapters/telemetry.py`), and the
exposition text read back exactly as Prometheus scrapes it (`generate_latest` on its registry).
The figures count what the runner did; the no-op telemetry (the default) and a broken one change
nothing the operator does."""
from __future__ import annotations

import copy
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sre_operator import main
from sre_operator.adapters.telemetry import PrometheusTelemetry
from sre_operator.domain.clock import parse
from sre_operator.domain.telemetry import NO_TELEMETRY, NoTelemetry, Telemetry
from sre_operator.incident import runner
from sre_operator.settings import Settings
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import (
    FAILING,
    HEALTHY,
    NS,
    Cycles,
    Figures,
    Model,
    approve,
    incident,
    ports,
    run,
    scale,
    scale_to_zero,
    settings,
    status,
)


def exposed(t: PrometheusTelemetry) -> dict[str, float]:
    """Every sample of the exposition text as `name{label="value",...}` → value (labels sorted)."""
    text = generate_latest(t.registry).decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_a_resolved_incident_is_counted_opened_transitioned_acted_on_and_timed(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster, known_good=2)
    onset = "2026-01-01T12:00:45Z"  # the detector's first breaching reading, 15 s before the Incident
    incident(cluster, detectedAt=onset)
    t = PrometheusTelemetry()
    st = run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), telemetry=t), settings())
    assert st["phase"] == "Resolved"
    m = exposed(t)
    assert m['sre_operator_incidents_opened_total{symptom="unavailable"}'] == 1
    assert m['sre_operator_actions_total{outcome="applied",type="scale"}'] == 1
    for phase in ("Triaging", "Planning", "Mitigating", "Validating", "Resolved"):
        assert m[f'sre_operator_phase_transitions_total{{phase="{phase}"}}'] == 1, phase
    assert m['sre_operator_phase_transitions_total{phase="Escalated"}'] == 0  # present before the first one
    created, resolved = parse(st["detectedAt"]), parse(st["resolvedAt"])
    assert created is not None and resolved is not None
    assert m["sre_operator_time_to_detect_seconds_count"] == 1 and m["sre_operator_time_to_detect_seconds_sum"] == 15
    assert m['sre_operator_time_to_detect_seconds_bucket{le="15.0"}'] == 1
    assert m['sre_operator_time_to_detect_seconds_bucket{le="10.0"}'] == 0
    ttm = (resolved - parse(onset)).total_seconds()  # type: ignore[operator]
    assert m["sre_operator_time_to_mitigate_seconds_count"] == 1
    assert m["sre_operator_time_to_mitigate_seconds_sum"] == ttm
    assert abs(ttm - float(st["timeToMitigate"].rstrip("s"))) < 1  # the Incident's own figure
    assert not any(k.startswith(("sre_operator_undos_total", "sre_operator_llm_")) for k in m)
    # A finished Incident ticked again records nothing more.
    runner.tick(ports(cluster, Figures(), telemetry=t), NS, "inc", settings())
    assert exposed(t) == m


def test_undone_attempts_count_their_undos_and_the_escalation(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster)
    t = PrometheusTelemetry()
    st = run(cluster, ports(cluster, Figures(product=dict(FAILING)), telemetry=t), settings())
    assert st["phase"] == "Escalated" and "timeToMitigate" not in st
    m = exposed(t)
    assert m['sre_operator_actions_total{outcome="applied",type="scale"}'] == 1
    assert m['sre_operator_actions_total{outcome="undone",type="scale"}'] == 1
    assert m['sre_operator_actions_total{outcome="applied",type="rollout-restart"}'] == 1
    assert m['sre_operator_undos_total{outcome="undone"}'] == 1
    assert m['sre_operator_undos_total{outcome="skipped"}'] == 1
    assert m['sre_operator_phase_transitions_total{phase="Undoing"}'] == 2
    assert m['sre_operator_phase_transitions_total{phase="Planning"}'] == 2
    assert m['sre_operator_phase_transitions_total{phase="Escalated"}'] == 1
    assert m['sre_operator_phase_transitions_total{phase="Resolved"}'] == 0
    assert m["sre_operator_time_to_mitigate_seconds_count"] == 0
    assert m['sre_operator_incidents_opened_total{symptom="unavailable"}'] == 1


def test_a_refused_action_counts_failed_and_a_refused_undo_counts_failed(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, maxAttempts=1)
    t = PrometheusTelemetry()
    p, s = ports(cluster, Figures(product=dict(HEALTHY)), telemetry=t), settings()
    cluster.refuse_patches("Deployment", 422, "spec.replicas: Invalid value")
    assert run(cluster, p, s)["phase"] == "Escalated"
    m = exposed(t)
    assert m['sre_operator_actions_total{outcome="failed",type="scale"}'] == 1
    assert 'sre_operator_actions_total{outcome="applied",type="scale"}' not in m

    other = shop(MemoryCluster())  # an applied action whose undo is refused (its target deleted)
    scale_to_zero(other)
    incident(other, maxAttempts=1)
    p = ports(other, Figures(product=dict(FAILING)), telemetry=t)
    run(other, p, s, until={"Undoing"})
    other.delete("Deployment", NS, "product")
    assert run(other, p, s)["phase"] == "Escalated"
    m = exposed(t)
    assert m['sre_operator_undos_total{outcome="failed"}'] == 1
    assert m['sre_operator_actions_total{outcome="applied",type="scale"}'] == 1
    assert m['sre_operator_phase_transitions_total{phase="Escalated"}'] == 2


def test_model_calls_count_tokens_and_fallbacks_by_model(cluster: MemoryCluster) -> None:
    t = PrometheusTelemetry()
    scale_to_zero(cluster)
    incident(cluster, "bad", mode="dry-run")
    s = settings(planner="llm", llm_triage=False)
    st = run(cluster, ports(cluster, Figures(), llm=Model(None, "the model did not answer"), telemetry=t), s,
             name="bad")
    assert st["phase"] == "DryRun" and st["diagnosis"]["planner"] == "rules"
    m = exposed(t)
    assert m['sre_operator_llm_calls_total{model="m"}'] == 1
    assert m['sre_operator_llm_tokens_total{kind="prompt",model="m"}'] == 100
    assert m['sre_operator_llm_tokens_total{kind="completion",model="m"}'] == 10
    assert m['sre_operator_llm_fallbacks_total{model="m"}'] == 1
    assert m['sre_operator_phase_transitions_total{phase="DryRun"}'] == 1
    assert not any(k.startswith("sre_operator_actions_total") for k in m)  # a dry run acts on nothing

    incident(cluster, "good", mode="dry-run")
    st = run(cluster, ports(cluster, Figures(), llm=Model(scale("product", 3)), telemetry=t), s, name="good")
    assert st["diagnosis"]["planner"] == "llm"
    m = exposed(t)
    assert m['sre_operator_llm_calls_total{model="m"}'] == 2
    assert m['sre_operator_llm_tokens_total{kind="prompt",model="m"}'] == 200
    assert m['sre_operator_llm_fallbacks_total{model="m"}'] == 1  # the good plan was used
    assert m['sre_operator_phase_transitions_total{phase="DryRun"}'] == 2


def test_approval_waits_are_counted(cluster: MemoryCluster) -> None:
    scale_to_zero(cluster)
    incident(cluster, mode="approve")
    t = PrometheusTelemetry()
    st = run(cluster, ports(cluster, Figures(), telemetry=t), settings(), limit=5)
    assert st["phase"] == "AwaitingApproval"
    m = exposed(t)
    assert m['sre_operator_phase_transitions_total{phase="AwaitingApproval"}'] == 1
    # The open-Incident gauges an alert on a long wait reads: one waiting, since its timeline entry.
    assert m['sre_operator_open_incidents{phase="AwaitingApproval"}'] == 1
    assert m['sre_operator_open_incidents{phase="Mitigating"}'] == 0
    waited = time.time() - parse(st["timeline"][-1]["at"]).timestamp()  # type: ignore[union-attr]
    assert abs(m['sre_operator_oldest_incident_in_phase_seconds{phase="AwaitingApproval"}'] - waited) < 5
    approve(cluster, "attempt-1")
    assert run(cluster, ports(cluster, Figures(product=dict(HEALTHY)), telemetry=t), settings())["phase"] == "Resolved"
    m = exposed(t)
    assert m['sre_operator_open_incidents{phase="AwaitingApproval"}'] == 0  # finished: no longer counted
    assert m['sre_operator_oldest_incident_in_phase_seconds{phase="AwaitingApproval"}'] == 0
    t.in_phase("shop/x", "Validating", None)
    t.in_phase("shop/gone", "Planning", time.time() - 60)
    runner.tick(ports(cluster, Figures(), telemetry=t), NS, "gone", settings())  # deleted meanwhile
    m = exposed(t)
    assert m['sre_operator_open_incidents{phase="Validating"}'] == 1
    assert m['sre_operator_open_incidents{phase="Planning"}'] == 0


def test_the_detector_loop_records_each_cycle_and_the_namespaces_it_reads(cluster: MemoryCluster) -> None:
    from sre_operator.detection.loop import detector_loop
    scale_to_zero(cluster)
    t = PrometheusTelemetry()
    detector_loop(Cycles(cluster, 3), cluster, Figures(), settings(breach_cycles=2),  # type: ignore[arg-type]
                  now=cluster.clock, telemetry=t)
    m = exposed(t)
    assert m["sre_operator_detector_cycle_seconds_count"] == 3
    assert m['sre_operator_detector_cycle_seconds_bucket{le="+Inf"}'] == 3
    assert m["sre_operator_watched_namespaces"] == 1
    assert m["sre_operator_metrics_source_up"] == 1
    # The metrics source away: said at the next cycle (an alert reads it).
    away = Figures()
    away.down = True
    detector_loop(Cycles(cluster, 1), cluster, away, settings(breach_cycles=2),  # type: ignore[arg-type]
                  now=cluster.clock, telemetry=t)
    assert exposed(t)["sre_operator_metrics_source_up"] == 0
    # The detector opens the Incident; the pipeline counts it when it takes it on.
    assert len(cluster.list_objects("Incident", NS)) == 1
    assert not any(k.startswith("sre_operator_incidents_opened_total") for k in m)


class Broken(NoTelemetry):
    """A telemetry that fails at every call: the pipeline must not notice."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_"):
            return object.__getattribute__(self, name)

        def fail(*args: object, **kw: object) -> None:
            raise RuntimeError("metrics are broken")
        return fail


@pytest.mark.parametrize("telemetry", [NO_TELEMETRY, Broken()], ids=["no-op", "broken"])
def test_telemetry_changes_nothing_the_operator_does(telemetry: Telemetry) -> None:
    def drive(t: Telemetry | None) -> tuple[dict[str, Any], list[Any]]:
        c = shop(MemoryCluster())
        scale_to_zero(c, known_good=2)
        incident(c)
        p = ports(c, Figures(product=dict(HEALTHY)), llm=Model(None, "no answer"))
        if t is not None:
            p.telemetry = t
        run(c, p, settings())
        return status(c), copy.deepcopy(c.writes)

    recorded = PrometheusTelemetry()
    default = drive(None)  # Ports' default: the no-op telemetry
    assert default == drive(telemetry) == drive(recorded)
    assert default[0]["phase"] == "Resolved"
    assert exposed(recorded)['sre_operator_phase_transitions_total{phase="Resolved"}'] == 1


def test_labels_outside_the_vocabulary_count_as_other() -> None:
    t = PrometheusTelemetry()
    t.incident_opened("x" * 500, None)
    t.phase_changed("Bogus")
    t.action("drop-database", "applied")
    m = exposed(t)
    assert m['sre_operator_incidents_opened_total{symptom="other"}'] == 1
    assert m['sre_operator_phase_transitions_total{phase="other"}'] == 1
    assert m['sre_operator_actions_total{outcome="applied",type="other"}'] == 1
    assert m["sre_operator_time_to_detect_seconds_count"] == 0


def test_the_endpoint_serves_the_registry_and_the_leader_gauge() -> None:
    t = PrometheusTelemetry()
    t.leading(False)
    server = t.serve(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert "sre_operator_leader 0.0" in r.read().decode()
        t.leading(True)
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
        assert "sre_operator_leader 1.0" in text
        assert "python_gc" not in text and "process_cpu" not in text  # its own registry only
    finally:
        server.shutdown()
        server.server_close()


def test_the_metrics_port_setting_and_zero_turns_metrics_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRE_OPERATOR_METRICS_PORT", raising=False)
    assert Settings().metrics_port == 9464
    monkeypatch.setenv("SRE_OPERATOR_METRICS_PORT", "0")
    assert Settings().metrics_port == 0
    assert main.serve_metrics(0) is NO_TELEMETRY


def test_a_metrics_port_already_taken_costs_the_metrics_not_the_operator() -> None:
    first = PrometheusTelemetry()
    server = first.serve(0, addr="0.0.0.0")  # noqa: S104 - as the operator binds it
    try:
        assert main.serve_metrics(server.server_port) is NO_TELEMETRY
    finally:
        server.shutdown()
        server.server_close()
