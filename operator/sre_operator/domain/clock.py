"""The one place time is read, written and parsed. Every timestamp the operator writes is RFC 3339
in UTC with a `Z`; every timestamp it reads (its own, the API server's, a person's) goes through
`parse`, which keeps a UTC offset and fractions of a second instead of cutting them off."""
from __future__ import annotations

import datetime as dt
import re

UTC = dt.UTC


def now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


def stamp(at: dt.datetime | None = None) -> str:
    """RFC 3339, whole seconds, UTC (`2026-11-26T01:02:03Z`): the form of every status time."""
    return (at or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_micro(at: dt.datetime | None = None) -> str:
    """RFC 3339 with microseconds (a Lease's `MicroTime`)."""
    return (at or now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (None for none or an unreadable one: a time that
    cannot be read is missing, never 'now')."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def age_seconds(value: str | None, at: dt.datetime | None = None) -> float | None:
    """Seconds from `value` to `at` (now); None when `value` is missing or unreadable."""
    then = parse(value)
    if then is None:
        return None
    return ((at or now()) - then).total_seconds()


def seconds_text(seconds: float) -> str:
    """A duration as the status shows it (`12.3s`)."""
    return f"{seconds:.1f}s"


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go-style durations as the CRDs accept them (`90s`, `5m`, `1h30m`, `250ms`) and PromQL range
    windows of ours (`1m`, `41s`), in seconds. ValueError when it is not one."""
    parts = _DURATION.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)
