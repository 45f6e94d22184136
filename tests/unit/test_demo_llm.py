"""`make demo` with no LLM key: the local model's chart is installed and the operator pointed at its Service
(the key's way to its Secret is tested in test_llm_key.py)."""
from __future__ import annotations

import importlib.util
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
