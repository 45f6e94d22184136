"""Traces as triage evidence, as STRATUS uses them: the failing and the slowest recent traces through
the affected service, read from Jaeger's query API (`/api/traces`) and boiled down to what a person
(or the planner) needs: which span failed, in which service, with what status, and where the time
went. `summarize` is pure; `TraceReader` is the HTTP adapter. A trace store that does not answer is
missing evidence, never an error that stops triage."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

from ..domain.models import TraceFacts

log = logging.getLogger("sre_operator.traces")
MAX_TEXT = 300

# A trace or a span as Jaeger's query API returns it.
Json = dict[str, Any]


def _tags(span: Json) -> dict[str, Any]:
    return {t.get("key"): t.get("value") for t in span.get("tags") or []}


def span_failed(span: Json) -> str | None:
    """Why a span counts as failed (None: it did not): an error flag, an ERROR status, a 5xx."""
    tags = _tags(span)
    code = tags.get("http.response.status_code", tags.get("http.status_code"))
    try:
        code_num = int(code) if code is not None else 0
    except (TypeError, ValueError):
        code_num = 0
    if code_num >= 500:
        return f"HTTP {code_num}"
    if tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR":
        desc = tags.get("otel.status_description") or tags.get("error.type") or "error"
        return str(desc)[:MAX_TEXT]
    return None


def _service(trace: Json, span: Json) -> str:
    return str(((trace.get("processes") or {}).get(span.get("processID")) or {}).get("serviceName") or "?")


def _name(trace: Json, span: Json) -> str:
    """`service: operation`, and for a call to another service `→ host:port` (a client span's
    operation is only its method)."""
    tags = _tags(span)
    name = f"{_service(trace, span)}: {span.get('operationName', '?')}"
    if tags.get("span.kind") != "client":
        return name
    host = tags.get("server.address") or tags.get("net.peer.name")
    if not host:
        url = str(tags.get("url.full") or tags.get("http.url") or "")
        host = url.split("://", 1)[-1].split("/", 1)[0] if "://" in url else ""
        return f"{name} → {host}" if host else name
    port = tags.get("server.port") or tags.get("net.peer.port")
    return f"{name} → {host}:{port}" if port else f"{name} → {host}"


def _root(trace: Json) -> Json | None:
    spans = trace.get("spans") or []
    ids = {s.get("spanID") for s in spans}
    roots = [s for s in spans if not any(r.get("refType") == "CHILD_OF" and r.get("spanID") in ids
                                         for r in s.get("references") or [])]
    # The earliest and, at the same start, the longest: a server span before its own "http receive".
    return min(roots or spans, key=lambda s: (s.get("startTime", 0), -s.get("duration", 0)), default=None)


def summarize(traces: list[Json], limit: int = 5) -> list[TraceFacts]:
    """The `limit` most telling traces: failing ones first (most failed spans, then longest), then
    the slowest. Each says its root, its duration, the failed spans and the slowest span."""
    facts = []
    for t in traces:
        spans = t.get("spans") or []
        root = _root(t)
        if root is None:
            continue
        failed = list(dict.fromkeys(f"{_name(t, s)} ({why})"[:MAX_TEXT] for s in spans if (why := span_failed(s))))
        children = [s for s in spans if s is not root] or spans
        slow = max(children, key=lambda s: s.get("duration", 0))
        facts.append(TraceFacts(
            trace_id=str(t.get("traceID", ""))[:64], root=_name(t, root)[:MAX_TEXT],
            duration_ms=round(root.get("duration", 0) / 1000, 1), spans=len(spans), failed_spans=failed[:5],
            slowest_span=f"{_name(t, slow)} {slow.get('duration', 0) / 1000:.0f} ms"[:MAX_TEXT]))
    facts.sort(key=lambda f: (-len(f.failed_spans), -f.duration_ms))
    return facts[:limit]


@dataclass
class TraceReader:
    base_url: str
    timeout: float = 3.0

    def recent(self, service: str, lookback: str = "5m", limit: int = 50) -> list[Json]:
        resp = requests.get(f"{self.base_url.rstrip('/')}/api/traces", timeout=self.timeout,
                            params={"service": service, "lookback": lookback, "limit": str(limit)})
        resp.raise_for_status()
        return list(resp.json().get("data") or [])

    def evidence(self, service: str, limit: int = 5) -> list[TraceFacts]:
        try:
            return summarize(self.recent(service), limit)
        except (requests.RequestException, ValueError) as exc:
            log.warning("traces of %s from %s: %s", service, self.base_url, exc)
            return []
