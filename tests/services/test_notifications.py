"""The HTTP notifier (`adapters/notify.py`) against real receivers on loopback: a JSON webhook and a
Slack-compatible one get the AwaitingApproval and Resolved notices of an Incident, once each; a
receiver that fails at first gets the notice on a retry; a dead one costs a warning and
`sre_operator_notifications_total{outcome="failed"}`, within the retries' bound, and nothing else."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import generate_latest

from shop import procs
from sre_operator.adapters.notify import HttpNotifier
from sre_operator.adapters.telemetry import PrometheusTelemetry
from sre_operator.domain.notify import Notice, Sink
from sre_operator.incident import notices


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every POST (path, headers, JSON body); the first
    `fail_first` requests are answered 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[str, dict[str, str], Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    receiver.got.append((self.path, dict(self.headers), json.loads(body)))
                    self.send_response(200)
                self.end_headers()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


def incident(phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "inc-product", "namespace": "shop", "uid": "0b1c"},
            "spec": {"service": "product", "symptom": "unavailable", "summary": "product: 0/2 ready"},
            "status": {"phase": phase, "message": f"now {phase}", "diagnosis": {"rootCause": "scaled to zero"},
                       "timeline": [{"at": "2026-01-01T00:00:00Z", "phase": phase, "message": "m"}], **status}}


def test_webhook_and_slack_receivers_get_the_approval_and_the_resolution_once(receiver: Receiver) -> None:
    telemetry = PrometheusTelemetry()
    notifier = HttpNotifier([Sink("webhook", receiver.url("/hook")), Sink("slack", receiver.url("/slack"))],
                            telemetry, attempts=3, timeout=2, backoff=0.05)
    recorded: list[tuple[str, str]] = []
    for inc in (incident("AwaitingApproval", attempts=0), incident("Resolved", attempts=1)):
        notice = notices.due(inc, "http://127.0.0.1:8888")
        key = notices.key_of(inc["status"])
        assert notice is not None and key is not None
        for _ in range(3):  # offered on every tick while in flight: delivered once
            notifier.notify(notice, lambda outcome, key=key: recorded.append((key, outcome)))
        assert notifier.drain(20)
        # Offered once more by a tick that read the Incident before its record was written: ignored.
        notifier.notify(notice, lambda outcome, key=key: recorded.append((key, outcome)))
        assert notifier.drain(20)
    assert recorded == [("AwaitingApproval-attempt-1", "delivered"), ("Resolved", "delivered")]
    hooks = [(h, b) for path, h, b in receiver.got if path == "/hook"]
    slack = [b for path, _, b in receiver.got if path == "/slack"]
    assert [b["phase"] for _, b in hooks] == ["AwaitingApproval", "Resolved"]
    headers, first = hooks[0]
    assert headers["Idempotency-Key"] == "0b1c/AwaitingApproval-attempt-1"
    assert (first["name"], first["namespace"], first["service"], first["diagnosis"]) == (
        "inc-product", "shop", "product", "scaled to zero")
    assert first["link"] == "http://127.0.0.1:8888/?namespace=shop&incident=inc-product"
    assert [b["text"].split(":")[0] for b in slack] == ["*AwaitingApproval*", "*Resolved*"]
    assert "product: 0/2 ready" in slack[0]["text"] and "Diagnosis: scaled to zero" in slack[1]["text"]
    text = generate_latest(telemetry.registry).decode()
    # The receiver's first answer was 503: retried, and every notice delivered in the end.
    assert 'sre_operator_notifications_total{outcome="delivered",sink="webhook"} 2.0' in text
    assert 'sre_operator_notifications_total{outcome="delivered",sink="slack"} 2.0' in text


def test_a_dead_receiver_costs_a_warning_and_a_metric_within_the_retries_bound(
        caplog: pytest.LogCaptureFixture) -> None:
    telemetry = PrometheusTelemetry()
    dead = f"http://127.0.0.1:{procs.free_port()}/hook"  # nothing listens there
    notifier = HttpNotifier([Sink("webhook", dead)], telemetry, attempts=3, timeout=1, backoff=0.1)
    notice = notices.due(incident("Escalated"), "")
    assert isinstance(notice, Notice)
    outcomes: list[str] = []
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, "sre_operator.notify"):
        notifier.notify(notice, outcomes.append)  # returns at once
        assert time.monotonic() - start < 0.5
        assert notifier.drain(20)
    assert outcomes == ["failed: webhook"] and time.monotonic() - start >= 0.3  # 0.1 + 0.2 of back-off
    assert any("not delivered to the webhook sink: ConnectionError" in r.message for r in caplog.records)
    assert dead not in caplog.text  # the URL (its token) is never logged
    text = generate_latest(telemetry.registry).decode()
    assert 'sre_operator_notifications_total{outcome="failed",sink="webhook"} 1.0' in text
