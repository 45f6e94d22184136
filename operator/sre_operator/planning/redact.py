"""Evidence hygiene before anything read from the cluster reaches a model (k8sgpt's `--anonymize`
is the anchor): secrets and tokens in log lines and config values are replaced by a marker, and the
evidence's own delimiters are removed until none is left (one pass of `replace` leaves
`</evid</evidence>ence>` as `</evidence>`). Control characters go too. Pure string functions."""
from __future__ import annotations

import hashlib
import re
from typing import Any

REDACTED = "[REDACTED]"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_DELIMITER = re.compile(r"<\s*/?\s*evidence\s*>", re.IGNORECASE)
_SECRETS = [
    # key=value and key: value where the key names a secret
    re.compile(r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
               r"client[_-]?secret|auth)[\w.-]*)(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),  # Authorization header values
    re.compile(r"(?i)(\w+://)[^/\s:@]+:[^/\s@]+@"),  # credentials in a URL
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),  # a JWT
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # an AWS access key id
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}\b"),  # API keys of OpenAI/Stripe style
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
]


_PRIVATE_KEY = _SECRETS[-1]


def private_keys_marked(text: str) -> str:
    """Each private key block (many lines) as one line that names it by a short hash: text cut into
    lines (a diff) can then be cleaned line by line, and a changed key still shows as changed."""
    return _PRIVATE_KEY.sub(lambda m: f"{REDACTED} private key {hashlib.sha256(m.group(0).encode()).hexdigest()[:8]}",
                            text)


def strip_delimiters(text: str) -> str:
    """Remove `<evidence>` / `</evidence>` (any case, any spacing) until none is left."""
    while True:
        stripped = _DELIMITER.sub("", text)
        if stripped == text:
            return text
        text = stripped


def redact(text: str) -> str:
    """Secrets and tokens replaced by a marker (the key they were under stays, for context)."""
    for i, pattern in enumerate(_SECRETS):
        if i == 0:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        elif i == 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
        elif i == 1:
            text = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def clean(text: str, limit: int | None = None) -> str:
    """Control characters out, secrets redacted, delimiters gone, cut to `limit`."""
    out = strip_delimiters(redact(_CONTROL.sub(" ", text)))
    return out if limit is None else out[:limit]


def clean_document(doc: Any) -> Any:
    """`clean` applied to every string of a JSON-like document (keys included)."""
    if isinstance(doc, str):
        return clean(doc)
    if isinstance(doc, dict):
        return {clean(str(k)): clean_document(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [clean_document(v) for v in doc]
    return doc
