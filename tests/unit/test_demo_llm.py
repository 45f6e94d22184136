"""`make demo`'s LLM wiring: the key reaches its Secret on stdin (never a command line, where `ps` shows
it), and with no key the operator is pointed at the local model's Service."""
from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class RecordingCluster:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], Any]] = []

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> None:  # noqa: A002
        self.calls.append(("kubectl", args, input))

    def helm(self, *args: str, timeout: float = 300) -> None:
        self.calls.append(("helm", args, None))


def test_the_llm_key_goes_to_its_secret_on_stdin_never_on_a_command_line() -> None:
    demo, cluster = _demo(), RecordingCluster()
    demo.create_llm_secret(cluster, "sk-very-secret")
    assert all("sk-very-secret" not in " ".join(args) for _, args, _ in cluster.calls)
    [secret] = [json.loads(stdin) for _, _, stdin in cluster.calls if stdin]
    assert secret["metadata"] == {"name": "sre-operator-llm", "namespace": "sre-operator"}
    assert base64.b64decode(secret["data"]["api-key"]) == b"sk-very-secret"


def test_with_no_key_the_operator_plans_with_the_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localkube import binaries
    monkeypatch.setenv("SRE_OPERATOR_CACHE", str(tmp_path))
    demo, cluster = _demo(), RecordingCluster()
    with pytest.raises(binaries.MissingBinary, match="make cluster-bin"):
        demo.install_local_llm(cluster)  # not provisioned: a clear error, nothing installed
    assert cluster.calls == []
    model = binaries.MODEL_1_5B
    model.dir.mkdir(parents=True)
    (model.dir / binaries.MODEL_FILE).write_bytes(b"GGUF")
    (model.dir / ".complete").write_text(binaries.MODEL_FILE)
    values = demo.install_local_llm(cluster)
    [(_, helm, _)] = cluster.calls
    assert helm[:4] == ("upgrade", "--install", "llm", str(ROOT / "charts/llm"))
    assert f"model.hostPath={model.dir}" in helm
    assert "llm.baseUrl=http://llm.llm:8080/v1" in values and "llm.model=local" in values
