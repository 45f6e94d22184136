"""The CRDs on a real API server: accepted, Established, invalid objects rejected with a clear
message, printer columns shown."""
from __future__ import annotations

import json
import subprocess

import pytest

from localkube.cluster import Cluster
from localkube.testing import CRDS


def fs(name: str, spec: str) -> str:
    return f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\nmetadata:\n  name: {name}\nspec:\n{spec}"


def test_examples_are_accepted_and_listed_with_printer_columns(crds: Cluster, namespace: str) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", str(CRDS / "examples"), "-f", str(CRDS.parent / "scenarios"))
    out = crds.kubectl("get", "fs,inc", "-n", namespace).stdout
    assert "TYPE" in out and "TARGET" in out and "PHASE" in out and "DURATION" in out
    assert "payment-crash" in out and "product-overload" in out
    assert all(col in out for col in ("SERVICE", "SYMPTOM", "ATTEMPTS", "TTM"))
    assert "payment-unavailable-x7k2p" in crds.kubectl("get", "sre", "-n", namespace).stdout  # category
    # Defaults from the schema are applied by the server.
    assert crds.kubectl("get", "fs", "bad-gateway-config", "-n", namespace, "-o",
                        "jsonpath={.spec.mode}").stdout == "one"


@pytest.mark.parametrize(("spec", "message"), [
    ("  type: disk-full\n  target: {name: payment}\n", 'Unsupported value: "disk-full"'),
    ("  type: payment-crash\n  target: {name: payment}\n  duration: -5m\n", "spec.duration"),
    ("  type: payment-crash\n", "spec.target: Required value"),
    ("  type: payment-crash\n  target: {name: 42}\n", "spec.target.name: Invalid value: \"integer\""),
    ("  type: payment-crash\n  target: {name: payment, selector: {matchLabels: {a: b}}}\n",
     "target needs exactly one of name or selector"),
    ("  type: product-overload\n  target: {name: product}\n", "product-overload needs parameters.latencyMs"),
    ("  type: payment-crash\n  target: {name: payment}\n  mode: fixed\n", "mode fixed and fixed-percent need a value"),
])
def test_invalid_fault_scenarios_are_rejected_with_a_clear_message(crds: Cluster, namespace: str, spec: str,
                                                                   message: str) -> None:
    out = crds.kubectl("apply", "-n", namespace, "-f", "-", input=fs("bad", spec), check=False)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_target_cannot_change_after_creation(crds: Cluster, namespace: str) -> None:
    crds.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=fs("s", "  type: payment-crash\n  target: {name: payment}\n"),
    )
    out = crds.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                       input=fs("s", "  type: payment-crash\n  target: {name: order}\n"))
    assert out.returncode != 0 and "cannot change once the scenario exists" in out.stderr


def test_incident_status_is_a_subresource_and_validated(crds: Cluster, namespace: str) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", str(CRDS / "examples" / "incident.yaml"))
    name = "payment-unavailable-x7k2p"
    crds.kubectl("patch", "incident", name, "-n", namespace, "--subresource=status", "--type=merge",
                 "-p", '{"status": {"phase": "Mitigating", "attempts": 1, "timeToMitigate": "42s"}}')
    row = crds.kubectl("get", "inc", name, "-n", namespace, "--no-headers").stdout.split()
    assert row[:6] == [name, "payment", "unavailable", "Mitigating", "1", "42s"]
    bad = crds.kubectl("patch", "incident", name, "-n", namespace, "--subresource=status", "--type=merge",
                       "-p", '{"status": {"phase": "Sleeping"}}', check=False)
    assert bad.returncode != 0 and 'Unsupported value: "Sleeping"' in bad.stderr
    # A status change through the main resource is ignored, as status is a subresource.
    crds.kubectl("patch", "incident", name, "-n", namespace, "--type=merge", "-p", '{"status": {"attempts": 9}}')
    assert crds.kubectl("get", "inc", name, "-n", namespace, "-o", "jsonpath={.status.attempts}").stdout == "1"



def test_the_diagnosis_is_explained_and_a_long_or_foreign_one_refused(crds: Cluster, namespace: str) -> None:
    from localkube.testing import wait_for

    def explained() -> str:
        out = crds.kubectl("explain", "incident.status.diagnosis", check=False)
        return out.stdout if out.returncode == 0 and "suspect" in out.stdout else ""
    text = wait_for(explained, 60, "kubectl explain incident.status.diagnosis")
    assert "never acted on" in text and "diagnosedBy" in text
    crds.kubectl("apply", "-n", namespace, "-f", str(CRDS / "examples" / "incident.yaml"))
    name = "payment-unavailable-x7k2p"

    def status(diagnosis: dict) -> subprocess.CompletedProcess[str]:
        return crds.kubectl("patch", "incident", name, "-n", namespace, "--subresource=status", "--type=merge",
                            "-p", json.dumps({"status": {"diagnosis": diagnosis}}), check=False)
    ok = status({"summary": "payment is down", "rootCause": "r", "diagnosedBy": "llm", "evidence": ["0/1 ready"],
                 "suspect": {"kind": "Deployment", "name": "payment"}})
    assert ok.returncode == 0, ok.stderr
    long = status({"summary": "x" * 2000})
    assert long.returncode != 0 and "status.diagnosis.summary: Too long" in long.stderr
    foreign = status({"suspect": {"kind": "Namespace", "name": "kube-system"}})
    assert foreign.returncode != 0 and "Unsupported value" in foreign.stderr
    spec = crds.kubectl("patch", "incident", name, "-n", namespace, "--type=merge",
                        "-p", '{"spec": {"planner": "always"}}', check=False)
    assert spec.returncode != 0 and "spec.planner" in spec.stderr


HUGE = "a" * 70000


@pytest.mark.parametrize(("doc", "message"), [
    (fs("huge-name", f"  type: payment-crash\n  target: {{name: {'a' * 300}}}\n"), "spec.target.name: Too long"),
    (fs("huge-config", f"  type: bad-gateway-config\n  target: {{kind: ConfigMap, name: gw}}\n"
                       f"  parameters: {{config: {HUGE}}}\n"), "spec.parameters.config: Too long"),
    (fs("many-env", "  type: bad-env\n  target: {name: order}\n  parameters:\n    env: {"
                    + ", ".join(f"V{i}: x" for i in range(20)) + "}\n"), "spec.parameters.env: Too many"),
    (("apiVersion: sre.stratus.dev/v1alpha1\nkind: Incident\nmetadata: {name: huge}\n"
      f"spec: {{service: payment, symptom: latency, summary: {HUGE}}}\n"), "spec.summary: Too long"),
])
def test_huge_strings_are_rejected_by_the_schema(crds: Cluster, namespace: str, doc: str, message: str) -> None:
    out = crds.kubectl("apply", "-n", namespace, "-f", "-", input=doc, check=False)
    assert out.returncode != 0 and message in out.stderr, out.stderr[:2000]


def test_unknown_fields_are_refused_when_strict_and_never_stored(crds: Cluster, namespace: str) -> None:
    doc = fs("extra", "  type: payment-crash\n  target: {name: payment, evil: true}\n  runAsRoot: true\n")
    strict = crds.kubectl("apply", "-n", namespace, "--validate=strict", "-f", "-", input=doc, check=False)
    assert strict.returncode != 0 and 'unknown field "spec.runAsRoot"' in strict.stderr, strict.stderr
    crds.kubectl("apply", "-n", namespace, "--validate=false", "-f", "-", input=doc)
    spec = json.loads(crds.kubectl("get", "fs", "extra", "-n", namespace, "-o", "json").stdout)["spec"]
    assert "runAsRoot" not in spec and "evil" not in spec["target"]  # pruned by the structural schema
    assert spec["target"] == {"name": "payment", "kind": "Deployment"}


def test_kubectl_explain_prints_every_field_s_description(crds: Cluster) -> None:
    out = crds.kubectl("explain", "incident.status.undoLog").stdout
    assert "Every action restored from its undo record" in out and "The attempt whose action was undone." in out
    assert "Attempts (plan, act, validate, undo) before" in crds.kubectl("explain", "incident.spec.maxAttempts").stdout
    notified = crds.kubectl("explain", "incident.status.notified").stdout
    assert "The notices told to people" in notified
    selector = crds.kubectl("explain", "faultscenario.spec.target.selector").stdout
    assert "Selects the objects targeted by label" in selector
