"""The real model, end to end: charts/llm serves Qwen2.5-Coder-0.5B (provisioned by `make cluster-bin`)
as a workload of the local cluster; the operator, configured with its base URL like any OpenAI-compatible
server, plans a real incident with it. The Incident's status must show real calls with real token
counts, and the model's plan must have been vetted and then applied, or refused with the reason stated.
A server that cannot be reached, or answers without tokens, fails the test."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from localkube.binaries import MODEL_0_5B, find_model
from localkube.cluster import Cluster, ClusterError
from localkube.testing import Traffic, helm_install, wait_for
from tests.e2e.test_incident_pipeline import incidents, known_good_recorded, running

TERMINAL = ("Resolved", "Escalated", "Failed")


def _install_llm(cluster: Cluster, ns: str) -> float:
    """charts/llm with the 0.5B mounted read-only, reachable from the host on node port 30081; seconds to Ready."""
    start = time.monotonic()
    try:
        helm_install(cluster, "llm", "llm", ns, f"model.hostPath={find_model(MODEL_0_5B).parent}",
                     "service.type=NodePort", "service.nodePort=30081", timeout="240s")
    except (ClusterError, subprocess.TimeoutExpired) as exc:
        pods = cluster.kubectl("describe", "pods", "-n", ns, check=False).stdout
        logs = cluster.kubectl("logs", "-n", ns, "deployment/llm", "--tail=40", check=False)
        raise AssertionError(f"{exc}\n{pods[-3000:]}\n{logs.stdout}{logs.stderr}") from exc
    return time.monotonic() - start


def test_the_local_model_plans_a_real_incident(cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    llm_ns = f"llm-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", llm_ns)
    traffic = Traffic(f"http://127.0.0.1:{cluster.host_port(30080)}")
    try:
        ready = _install_llm(cluster, llm_ns)
        traffic.thread.start()
        with running(cluster, shop, monkeypatch, SRE_OPERATOR_LLM_API_KEY="local", SRE_OPERATOR_LLM_MODEL="local",
                     SRE_OPERATOR_LLM_BASE_URL=f"http://127.0.0.1:{cluster.host_port(30081)}/v1",
                     SRE_OPERATOR_LLM_TIMEOUT_SECONDS="400", SRE_OPERATOR_MAX_ATTEMPTS="1",
                     # Every plan by the model (hybrid would let the scale-to-zero rule act first); the rules'
                     # diagnosis, so that one call to the small model is the whole cost.
                     SRE_OPERATOR_PLANNER="llm", SRE_OPERATOR_LLM_TRIAGE="false"):
            wait_for(lambda: known_good_recorded(cluster, shop) and traffic.ok_since(time.monotonic() - 5), 90,
                     "a healthy reading")
            cluster.apply(f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\n"
                          f"metadata: {{name: fault, namespace: {shop}}}\n"
                          f"spec: {{type: scale-to-zero, target: {{name: product}}, duration: 20m}}\n")
            injected = time.monotonic()
            found = wait_for(lambda: [i for i in incidents(cluster, shop) if i["spec"]["service"] == "product"], 150,
                             "an Incident about product")
            name = found[0]["metadata"]["name"]
            opened = time.monotonic()

            def status() -> dict:
                return next(i for i in incidents(cluster, shop) if i["metadata"]["name"] == name).get("status") or {}
            try:
                wait_for(lambda: status().get("phase") in TERMINAL, 900, "the pipeline to finish", interval=2)
            except AssertionError as exc:
                raise AssertionError(json.dumps(status(), indent=1)[:6000]) from exc
            done = time.monotonic()
            st = status()
            record = json.dumps({k: st.get(k) for k in ("phase", "llm", "diagnosis", "plan", "actions", "timeline")},
                                indent=1)[:6000]
            llm = st.get("llm") or {}
            assert llm.get("model") == "local", record
            assert llm.get("calls", 0) >= 1 and llm.get("promptTokens", 0) > 0 and llm.get("completionTokens", 0) > 0, \
                record
            diagnosis = st["diagnosis"]
            if diagnosis["planner"] == "llm":
                # Used only after vetting (allowlist, namespace, named objects, not tried before): then applied.
                assert st["actions"] and all(a["outcome"] == "applied" for a in st["actions"]), record
                assert all(a["target"].get("namespace") in (None, shop) for a in st["plan"]["actions"]), record
            else:
                # Refused (by vetting, or for an answer that is no plan): the reason is stated, with an Event.
                assert diagnosis.get("fallbackReason"), record
                assert any(r["stage"] == "planning" and r["reason"] for r in llm.get("reasons", [])), record
                events = cluster.kubectl("get", "events", "-n", shop, "--field-selector",
                                         f"involvedObject.name={name},reason=PlannerFallback", "-o", "name").stdout
                assert events.strip(), record
            acted = [(a["type"], a["target"]["name"], a.get("outcome")) for a in st.get("actions") or []]
            summary = (f"local model (0.5B): Ready in {ready:.0f}s; incident {opened - injected:.0f}s after "
                       f"injection, {st['phase']} {done - opened:.0f}s after it opened; {llm['calls']} call(s), "
                       f"{llm['promptTokens']} prompt + {llm['completionTokens']} completion tokens, "
                       f"{llm.get('callSeconds')} s; planner {diagnosis['planner']} "
                       f"{diagnosis.get('fallbackReason') or ''}; actions {acted}")
            cluster.kubectl("delete", "faultscenario", "fault", "-n", shop, "--timeout=60s")
        print(summary)  # after the runner, which captures stdout
    finally:
        traffic.stop.set()
        if traffic.thread.is_alive():
            traffic.thread.join()
        cluster.helm("uninstall", "llm", "-n", llm_ns, check=False)
        cluster.kubectl("delete", "namespace", llm_ns, "--timeout=120s", check=False)
