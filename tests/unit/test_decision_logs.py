"""Logs (issue 20): `sre-operator run --log-format json` (or SRE_OPERATOR_LOG_FORMAT) puts kopf's
JSON formatter on the root logger, and the runner writes one line per decision (a phase moved, a
write made) naming its Incident, in the text and as fields."""
from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import kopf
import pytest

from sre_operator import main
from tests.fakes.cluster import MemoryCluster, shop
from tests.unit.test_pipeline import HEALTHY, Figures, incident, ports, run, scale_to_zero, settings


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)  # kopf's handler writes to the stderr of its making
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    args = main.parser().parse_args(["run", "--log-format", "json"])
    kopf.configure(log_format=main.LOG_FORMATS[args.log_format])
    try:
        yield out
    finally:
        root.handlers[:], root.level = handlers, level


def test_every_decision_is_one_json_line_naming_the_incident(json_logs: io.StringIO) -> None:
    cluster = shop(MemoryCluster())
    scale_to_zero(cluster, known_good=2)
    incident(cluster)
    assert run(cluster, ports(cluster, Figures(product=dict(HEALTHY))), settings())["phase"] == "Resolved"
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    mine = [r for r in lines if r.get("incident") == "inc"]
    assert [r["phase"] for r in mine if "phase" in r] == ["Triaging", "Planning", "Mitigating", "Validating",
                                                         "Resolved"]
    ledger, write = [r for r in mine if "write" in r]  # the action ledger's entry, then the action
    assert ledger["write"] == "ConfigMap/sre-operator-actions"
    assert write["write"] == "Deployment/product" and write["message"] == "incident shop/inc: patch Deployment/product"
    assert all(r["namespace"] == "shop" and r["object"]["kind"] == "Incident" and r["severity"] == "info"
               for r in mine)
    assert mine[-1]["message"].startswith("incident shop/inc: Validating → Resolved: validated")


def test_the_log_format_is_a_choice() -> None:
    assert main.parser().parse_args(["run"]).log_format is None  # the setting decides (full by default)
    with pytest.raises(SystemExit):
        main.parser().parse_args(["run", "--log-format", "xml"])
    assert settings().log_format == "full" and settings(log_format="json").log_format == "json"
