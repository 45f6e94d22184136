"""Seals on what the operator writes into a status and later acts on (an Incident's action records,
a FaultScenario's targets): an HMAC over the record's canonical JSON with a key only the operator
holds. Anyone who may write `incidents/status` or `faultscenarios/status` can change a record; none
of them can make a seal for the change, so a record whose seal does not verify is not acted on.

The key is the operator's (`Settings.record_key`, from a Secret in the chart); without one, each
process draws its own, and what an earlier process wrote is no longer trusted after a restart."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

PROCESS_KEY = secrets.token_bytes(32)  # used when no key is configured (lost with the process)


def canonical(what: Any) -> Any:
    """`what` as it reads back from the API server: a field whose value is null is not stored (a
    status patch drops it, at any depth), so it is not part of what is sealed either."""
    if isinstance(what, dict):
        return {k: canonical(v) for k, v in what.items() if v is not None}
    if isinstance(what, (list, tuple)):
        return [canonical(v) for v in what]
    return what


def seal(key: bytes, what: Any) -> str:
    """The seal of `what` (anything JSON can hold; keys sorted, so its order does not matter; null
    fields left out, as the API server leaves them out of what it stores)."""
    text = json.dumps(canonical(what), sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, what: Any, given: object) -> bool:
    """Whether `given` is the seal of `what` (in constant time)."""
    return isinstance(given, str) and hmac.compare_digest(seal(key, what), given)
