"""`make demo` does not wait for the local model: with no LLM key and the model not in the cache, the operator
starts on the rules planner and a background process builds the model, then switches the operator to it.
The background build itself (half an hour of compiling) is replaced here by a stand-in; the process handling
(a detached session the cluster stops) is tested with a real, harmless process."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from localkube import binaries, provision
from localkube.cluster import ClusterError

ROOT = Path(__file__).resolve().parents[2]
FAILED = "failed: llama-server: build failed (exit 1): ggml.c:12: error: unknown type name 'x'"


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_model_later", ROOT / "scripts" / "demo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class RecordingCluster:
    """Records kubectl and helm calls; `given` is what `helm get values sre-operator` answers."""

    name = "sre"

    def __init__(self, logs: Path, given: dict[str, Any] | None = None, building: int | None = None,
                 fail_on: str = "") -> None:
        self.layout = SimpleNamespace(logs=logs)
        self.kubeconfig_out = self.kubeconfig = logs.parent / "kubeconfig"
        self.given, self.building, self.fail_on = given, building, fail_on
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def state(self) -> dict[str, Any]:
        return {"pids": {"kube-apiserver": 1}}

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,  # noqa: A002
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self.calls.append(("kubectl", args))
        return subprocess.CompletedProcess(list(args), 0, "", "")

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        self.calls.append(("helm", args))
        if self.fail_on and self.fail_on in args:
            raise ClusterError(f"helm {' '.join(args)} failed (1): Error: UPGRADE FAILED:\ncontext deadline exceeded")
        out = json.dumps(self.given) if args[:2] == ("get", "values") else ""
        return subprocess.CompletedProcess(list(args), 0, out, "")

    def adopted(self, name: str) -> int | None:
        return self.building

    def host_port(self, node_port: int) -> int:
        return node_port

    def helm_calls(self, *first: str) -> list[tuple[str, ...]]:
        return [args for tool, args in self.calls if tool == "helm" and args[:len(first)] == first]


def _provisioned(*comps: binaries.Component) -> None:
    """What a finished build leaves in the cache (the stand-in for `make cluster-bin`'s builders)."""
    for comp in comps:
        comp.dir.mkdir(parents=True, exist_ok=True)
        for f in comp.binaries + comp.data:
            (comp.dir / f).write_bytes(b"\x7fELF")
            (comp.dir / f).chmod(0o755)
        (comp.dir / ".complete").write_text("\n".join(comp.binaries + comp.data) + "\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path / "cache"))
    for var in ("SRE_OPERATOR_LLM_API_KEY", "OPENAI_API_KEY", "SRE_OPERATOR_LLM_BASE_URL", "KUBEBUILDER_ASSETS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache"


def _run_main(demo: ModuleType, cluster: RecordingCluster, monkeypatch: pytest.MonkeyPatch) -> list[RecordingCluster]:
    """demo.main() on `cluster`; returns the clusters a background build was started for (none started for real)."""
    started: list[RecordingCluster] = []
    monkeypatch.setattr(demo.netns, "require_root", lambda what="": None)
    monkeypatch.setattr(demo, "demo_cluster", lambda: cluster)
    monkeypatch.setattr(demo, "start_model_build", lambda c: started.append(c) or 4321)
    assert demo.main() == 0
    return started


def _operator_values(cluster: RecordingCluster) -> list[str]:
    [args] = cluster.helm_calls("upgrade", "--install", "sre-operator")
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def test_with_the_model_cached_the_demo_installs_it_at_once(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _provisioned(binaries.LLAMA_SERVER, binaries.MODEL_1_5B)
    demo, cluster = _demo(), RecordingCluster(tmp_path / "logs")
    assert _run_main(demo, cluster, monkeypatch) == []
    assert cluster.helm_calls("upgrade", "--install", "llm")
    values = _operator_values(cluster)
    assert "planner=hybrid" in values and "llm.baseUrl=http://llm.llm:8080/v1" in values
    out = capsys.readouterr().out
    assert "plans with the local model" in out and "rules planner" not in out.lower()


def test_with_the_model_not_cached_the_demo_starts_on_rules_and_builds_it_in_the_background(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _provisioned(binaries.LLAMA_SERVER)  # llama-server built, the model not: still not usable
    demo, cluster = _demo(), RecordingCluster(tmp_path / "logs")
    assert _run_main(demo, cluster, monkeypatch) == [cluster]
    assert cluster.helm_calls("upgrade", "--install", "llm") == []  # nothing that would wait for the model
    values = _operator_values(cluster)
    assert "planner=rules" in values and not any(v.startswith("llm.") for v in values)
    assert not [args for tool, args in cluster.calls if tool == "kubectl" and "apply" in args and "-" in args]
    out = capsys.readouterr().out
    assert "demo: the operator starts on the rules planner (no LLM key set; the local model is not built yet)" in out
    assert "The operator plans with the RULES PLANNER for now" in out  # in the closing lines too
    assert f"tail -f {tmp_path / 'logs' / 'demo-model.log'}" in out
    assert "background (pid 4321" in out


def test_after_a_failed_build_the_demo_says_why_and_tries_again(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "demo-model.result").write_text(FAILED + "\n")
    demo, cluster = _demo(), RecordingCluster(tmp_path / "logs")
    assert _run_main(demo, cluster, monkeypatch) == [cluster]
    assert "planner=rules" in _operator_values(cluster)
    assert f"its last background build {FAILED}; trying again" in capsys.readouterr().out


def test_a_build_still_running_is_not_started_twice(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    demo, cluster = _demo(), RecordingCluster(tmp_path / "logs", building=777)
    assert _run_main(demo, cluster, monkeypatch) == []
    assert "planner=rules" in _operator_values(cluster)
    assert "its background build (pid 777) is still running" in capsys.readouterr().out


def test_an_llm_key_wins_over_the_local_model_either_way(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = _demo()
    for cached in (True, False):
        assert demo.llm_plan("api.openai.com", cached, None, FAILED)[:2] == ("external", False)


def test_the_background_build_switches_the_operator_to_the_model(cache: Path, tmp_path: Path) -> None:
    demo, logs = _demo(), tmp_path / "logs"
    logs.mkdir()
    cluster = RecordingCluster(logs, given={"planner": "rules", "watchNamespaces": ["shop"]})
    asked: list[list[str]] = []

    def build(names: list[str]) -> None:  # the stand-in for half an hour of compiling
        asked.append(names)
        _provisioned(binaries.LLAMA_SERVER, binaries.MODEL_1_5B)

    assert demo.build_model(cluster, logs, provide=build) is True
    assert asked == [list(provision.DEMO_MODEL)]
    [llm] = cluster.helm_calls("upgrade", "--install", "llm")
    assert f"model.hostPath={binaries.MODEL_1_5B.dir}" in llm
    assert any(tool == "kubectl" and args[:3] == ("apply", "-f", "-") for tool, args in cluster.calls)  # the Secret
    [upgrade] = cluster.helm_calls("upgrade", "sre-operator")
    assert "--reset-then-reuse-values" in upgrade  # the demo's other values (namespaces, Prometheus) stay
    for value in ("planner=hybrid", "llm.existingSecret=sre-operator-llm", "llm.baseUrl=http://llm.llm:8080/v1",
                  "llm.model=local", f"llm.timeoutSeconds={demo.LOCAL_LLM_TIMEOUT_SECONDS}"):
        assert value in upgrade
    assert (logs / "demo-model.result").read_text().startswith("done in ")


def test_a_failed_background_build_leaves_the_demo_on_rules_with_a_one_line_reason(
        cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo, logs = _demo(), tmp_path / "logs"  # not there yet: the result is written all the same
    cluster = RecordingCluster(logs, given={"planner": "rules"})

    def broken(names: list[str]) -> None:
        raise provision.ProvisionError(FAILED.removeprefix("failed: "))

    assert demo.build_model(cluster, logs, provide=broken) is False
    assert cluster.calls == []  # nothing installed, the operator untouched
    result = (logs / "demo-model.result").read_text()
    assert result.startswith(FAILED + " (the operator stays on the rules planner") and result.count("\n") == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"demo-model: {result.strip()}"  # last in the log too
    plan = demo.llm_plan(None, False, None, result.strip())
    assert plan.use == "rules" and plan.start_build and FAILED in plan.say


def test_a_failed_switch_is_one_line_too(cache: Path, tmp_path: Path) -> None:
    demo, logs = _demo(), tmp_path / "logs"
    logs.mkdir()
    cluster = RecordingCluster(logs, given={"planner": "rules"}, fail_on="sre-operator")
    assert demo.build_model(cluster, logs, provide=lambda names: _provisioned(binaries.LLAMA_SERVER,
                                                                              binaries.MODEL_1_5B)) is False
    result = (logs / "demo-model.result").read_text()
    assert result.startswith("failed: helm get values sre-operator") and result.count("\n") == 1


def test_the_background_build_leaves_an_operator_that_no_longer_waits_for_it(cache: Path, tmp_path: Path) -> None:
    demo, logs = _demo(), tmp_path / "logs"
    logs.mkdir()
    cluster = RecordingCluster(logs, given={"planner": "hybrid", "llm": {"existingSecret": "sre-operator-llm"}})
    assert demo.build_model(cluster, logs, provide=lambda names: None) is True
    assert cluster.helm_calls("upgrade") == []  # a later `make demo` with a key: its LLM stays
    assert "left as it is" in (logs / "demo-model.result").read_text()


def test_the_background_process_is_detached_and_tied_to_the_cluster(tmp_path: Path) -> None:
    from localkube import controlplane as cp
    from localkube.cluster import Cluster

    demo = _demo()
    cluster = Cluster("unit", tmp_path / "data")
    pid = demo.start_model_build(cluster, argv=["sh", "-c", "echo building; sleep 60 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(cp.group_members(pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert os.getsid(pid) == pid  # its own session: no terminal, the demo's exit does not end it
        assert cluster.adopted(demo.MODEL_BUILD) == pid
        assert (cluster.layout.logs / demo.MODEL_RESULT).read_text().startswith("building since ")
        cp.stop_groups([pid], grace=2)  # what `make cluster-down` does with it
        assert cp.group_members(pid) == [] and cluster.adopted(demo.MODEL_BUILD) is None
        assert (cluster.layout.logs / demo.MODEL_LOG).read_text() == "building\n"
    finally:
        cp.stop_groups([pid], grace=0.5)
