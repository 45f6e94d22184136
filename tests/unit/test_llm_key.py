"""The LLM key is a secret: no repr, str or error text of the settings, the model's config or a
failed call shows it, and the demo hands it to kubectl on stdin, never on a command line."""
from __future__ import annotations

import importlib.util
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sre_operator.adapters.llm_client import chat_client
from sre_operator.domain.ports import ModelCallFailed
from sre_operator.settings import Settings

KEY = "sk-test-0123456789abcdefSECRET"
ROOT = Path(__file__).resolve().parents[2]


class Plan(BaseModel):
    root_cause: str


def test_settings_and_llm_config_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_OPERATOR_LLM_API_KEY", KEY)
    settings = Settings()
    config = settings.llm_config()
    assert config is not None and config.api_key.get_secret_value() == KEY
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(config), str(config)):
        assert KEY not in shown


def test_a_failed_model_call_does_not_quote_the_key() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Settings(llm_api_key=KEY, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout_seconds=2,
                      llm_max_retries=0).llm_config()
    assert config is not None
    client = chat_client(config)
    with pytest.raises(ModelCallFailed) as caught:
        client.structured("m", [{"role": "user", "content": "hi"}], Plan, 10)
    for shown in (str(caught.value), repr(caught.value), repr(client), str(caught.value.__cause__)):
        assert KEY not in shown


def test_the_demo_passes_the_key_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("demo_under_test", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    calls: list[tuple[tuple[str, ...], str | None]] = []

    class Kubectl:
        def kubectl(self, *args: str, check: bool = True, input: str | None = None,  # noqa: A002
                    **_more: Any) -> subprocess.CompletedProcess[str]:
            calls.append((args, input))
            return subprocess.CompletedProcess(list(args), 0, "", "")

    monkeypatch.setenv("SRE_OPERATOR_LLM_API_KEY", KEY)
    demo.create_llm_secret(Kubectl())
    assert calls and all(KEY not in arg for args, _ in calls for arg in args)
    assert any(stdin and "api-key" in stdin for _, stdin in calls)
