"""The `Spans` port on the OpenTelemetry SDK, exported over OTLP/HTTP (Jaeger's :4318). Each span is
made after the fact with its own start and end; its trace id is the Incident's uid (a UUID is 128
bits, as a trace id is) and its parent the Incident's span, whose span id is derived from the uid
too, so the Incident's span (made when it finishes) and those of its phases and model calls meet in
one trace whichever operator process made them."""
from __future__ import annotations

import hashlib
import threading
import uuid

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from ..domain.tracing import Attributes, Ref

NS_PER_S = 1_000_000_000


def trace_id(ref: Ref) -> int:
    try:
        return uuid.UUID(ref.uid).int or 1
    except ValueError:  # not a UUID (a hand-made object in a test): a stable id all the same
        return int.from_bytes(hashlib.sha256(f"{ref.namespace}/{ref.name}/{ref.uid}".encode()).digest()[:16]) or 1


def root_span_id(ref: Ref) -> int:
    return int.from_bytes(hashlib.sha256(f"span/{trace_id(ref)}".encode()).digest()[:8]) or 1


class _Ids(IdGenerator):
    """Random ids, except the trace and span ids of an Incident's own span (set, in this thread, for
    the one call that makes it)."""

    def __init__(self) -> None:
        self.random = RandomIdGenerator()
        self.forced = threading.local()

    def generate_span_id(self) -> int:
        forced: int | None = getattr(self.forced, "span_id", None)
        return forced if forced is not None else self.random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced: int | None = getattr(self.forced, "trace_id", None)
        return forced if forced is not None else self.random.generate_trace_id()


class OtlpSpans:
    def __init__(self, endpoint: str = "", exporter: SpanExporter | None = None) -> None:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=5)
        self.ids = _Ids()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "sre-operator"}),
                                       id_generator=self.ids)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("sre_operator")

    def _parent(self, ref: Ref) -> Context:
        ctx = SpanContext(trace_id(ref), root_span_id(ref), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(ctx))

    def _span(self, ref: Ref, name: str, start: float, end: float, attributes: Attributes,
              kind: SpanKind = SpanKind.INTERNAL) -> None:
        attrs = {"sre.incident.name": ref.name, "sre.incident.namespace": ref.namespace, **attributes}
        span = self.tracer.start_span(name, context=self._parent(ref), kind=kind, attributes=attrs,
                                      start_time=int(start * NS_PER_S))
        span.end(end_time=int(max(start, end) * NS_PER_S))

    def phase(self, incident: Ref, phase: str, start: float, end: float, attributes: Attributes) -> None:
        self._span(incident, phase, start, end, {"sre.incident.phase": phase, **attributes})

    def model_call(self, incident: Ref, model: str, start: float, end: float, attributes: Attributes) -> None:
        self._span(incident, f"chat {model}", start, end, attributes, SpanKind.CLIENT)

    def incident(self, incident: Ref, start: float, end: float, attributes: Attributes) -> None:
        attrs = {"sre.incident.name": incident.name, "sre.incident.namespace": incident.namespace, **attributes}
        self.ids.forced.trace_id, self.ids.forced.span_id = trace_id(incident), root_span_id(incident)
        try:  # the trace's root: no parent, so the SDK asks the id generator for both ids
            span = self.tracer.start_span(f"incident {incident.namespace}/{incident.name}", context=Context(),
                                          attributes=attrs, start_time=int(start * NS_PER_S))
        finally:
            self.ids.forced.trace_id = self.ids.forced.span_id = None
        span.end(end_time=int(max(start, end) * NS_PER_S))

    def flush(self, timeout_ms: int = 5000) -> bool:
        return self.provider.force_flush(timeout_ms)
