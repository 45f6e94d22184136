"""The `Notifier` port over HTTP (requests): each notice is posted to every sink by one worker
thread, so no receiver ever holds the pipeline up. A failure worth retrying (not reached, a
timeout, 429, 5xx) is retried with a doubling back-off, `attempts` times at most; a receiver that
answers another 4xx is not asked again. Giving up costs a logged warning and
`sre_operator_notifications_total{outcome="failed"}`, never the Incident. The queue is bounded: a
notice that finds it full is left unrecorded, so the runner offers it again on a later tick."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import requests

from ..domain.notify import Notice, Sink
from ..domain.telemetry import NO_TELEMETRY, Telemetry

log = logging.getLogger("sre_operator.notify")
RETRY_STATUS = frozenset({408, 425, 429})
FINISHED_KEPT = 10_000


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notice) -> dict[str, Any]:
    """A Slack-compatible message (mrkdwn text; Mattermost and Rocket.Chat take the same)."""
    e = _slack_escape
    lines = [f"*{e(n.phase)}*: incident `{e(n.namespace)}/{e(n.name)}` ({e(n.service)}): {e(n.summary)}"]
    if n.message:
        lines.append(_slack_escape(n.message))
    if n.diagnosis:
        lines.append(f"Diagnosis: {_slack_escape(n.diagnosis)}")
    if n.link:
        lines.append(f"<{n.link}|Open in the dashboard>")
    return {"text": "\n".join(lines)}


def webhook_body(n: Notice) -> dict[str, Any]:
    return {"source": "sre-operator", **n.document()}


class HttpNotifier:
    def __init__(self, sinks: list[Sink], telemetry: Telemetry = NO_TELEMETRY, attempts: int = 4,
                 timeout: float = 5.0, backoff: float = 1.0, queue_size: int = 100) -> None:
        self.sinks, self.telemetry = list(sinks), telemetry
        self.attempts, self.timeout, self.backoff = max(1, attempts), timeout, backoff
        self.queue: queue.Queue[tuple[Notice, Callable[[str], None]]] = queue.Queue(maxsize=queue_size)
        self.in_flight: set[str] = set()
        # Keys this process has finished: a tick that read the Incident just before its record was
        # written offers the notice once more, and is ignored (bounded: the oldest are forgotten).
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.worker = threading.Thread(target=self._work, name="notifier", daemon=True)
        self.worker.start()

    def notify(self, notice: Notice, done: Callable[[str], None]) -> None:
        with self.lock:
            if notice.key in self.in_flight or notice.key in self.finished:
                return
            try:
                self.queue.put_nowait((notice, done))
            except queue.Full:
                log.warning("notice %s not queued: %d notices wait already", notice.key, self.queue.maxsize)
                return
            self.in_flight.add(notice.key)

    def _work(self) -> None:
        while True:
            notice, done = self.queue.get()
            try:
                failed = [s.name for s in self.sinks if not self.deliver(s, notice)]
                outcome = f"failed: {', '.join(failed)}" if failed else "delivered"
                try:
                    done(outcome)
                except Exception as exc:  # noqa: BLE001 - the record is retried by the runner's next offer
                    log.warning("notice %s: %s, not recorded: %s", notice.key, outcome, exc)
            finally:
                with self.lock:
                    self.in_flight.discard(notice.key)
                    self.finished[notice.key] = None
                    while len(self.finished) > FINISHED_KEPT:
                        self.finished.popitem(last=False)
                self.queue.task_done()

    def deliver(self, sink: Sink, notice: Notice) -> bool:
        body = slack_body(notice) if sink.kind == "slack" else webhook_body(notice)
        why = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)))
            try:
                r = self.session.post(sink.url, json=body, timeout=self.timeout,
                                      headers={"Idempotency-Key": notice.key})
            except requests.RequestException as exc:
                why = type(exc).__name__
                continue
            if r.status_code < 300:
                self.telemetry.notification(sink.name, "delivered")
                return True
            why = f"HTTP {r.status_code}"
            if r.status_code < 500 and r.status_code not in RETRY_STATUS:
                break  # the receiver refuses this message: asking again changes nothing
        # The URL holds the sink's token: it is never logged.
        log.warning("notice %s (%s of %s/%s) not delivered to the %s sink: %s", notice.key, notice.phase,
                    notice.namespace, notice.name, sink.name, why)
        self.telemetry.notification(sink.name, "failed")
        return False

    def drain(self, timeout: float = 30.0) -> bool:
        """Waits until every queued notice is handled (tests, a clean stop); False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.queue.unfinished_tasks == 0:
                return True
            time.sleep(0.05)
        return False
