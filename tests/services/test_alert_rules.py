"""The observability chart's alert rules in a real Prometheus (Debian's): the rules rendered by helm,
loaded by the process, evaluated every second over the operator's real telemetry adapter served on
loopback. Healthy figures fire nothing; each triggering figure fires its alert."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import yaml

from sre_operator.adapters.telemetry import PrometheusTelemetry
from tests.unit.test_charts import alert_rules

from .conftest import wait_for
from .test_prometheus import start_prometheus


def firing(prom: str) -> set[str]:
    alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def scrapes(prom: str) -> int:
    result = httpx.get(f"{prom}/api/v1/query", params={"query": "sre_operator_leader[1m]"}, timeout=5).json()
    return len(result["data"]["result"][0]["values"]) if result["data"]["result"] else 0


def test_each_alert_fires_on_its_triggering_figures_and_none_on_healthy_ones(tmp_path: Path) -> None:
    rules = alert_rules("--set", "prometheus.alerts.for=0s", "--set", "prometheus.alerts.awaitingApprovalMinutes=1")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    telemetry = PrometheusTelemetry()
    exporter = telemetry.serve(0, addr="127.0.0.1")
    target = f"127.0.0.1:{exporter.server_port}"
    prom, url = start_prometheus(tmp_path, [{"job_name": "sre-operator", "static_configs": [{"targets": [target]}]}],
                                 rule_files=[str(tmp_path / "alerts.yml")])
    stop = threading.Event()
    try:
        prom.wait_healthy(60)
        # Healthy: this replica leads, the detector cycles quickly, nobody waits, nothing escalated.
        telemetry.leading(True)
        telemetry.metrics_source(True)
        telemetry.in_phase("shop/a", "AwaitingApproval", time.time())
        cycle = [0.2]

        def detector() -> None:  # cycles on, as the leader's detector loop does
            while not stop.wait(0.5):
                telemetry.detector_cycle(cycle[0], 3)
        threading.Thread(target=detector, daemon=True).start()
        rules_api = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert len([r for g in rules_api for r in g["rules"]]) == 6  # loaded
        wait_for(lambda: scrapes(url) >= 5, timeout=30, what="five scrapes of the exporter")
        assert firing(url) == set()
        # Each trigger: an escalation, a wait of 2 minutes (> 1), slow cycles, the leader lost, Prometheus away.
        telemetry.phase_changed("Escalated")
        telemetry.in_phase("shop/a", "AwaitingApproval", time.time() - 120)
        telemetry.leading(False)
        telemetry.metrics_source(False)
        cycle[0] = 8.0
        want = {"SreOperatorIncidentEscalated", "SreOperatorAwaitingApproval", "SreOperatorDetectorFallingBehind",
                "SreOperatorNoLeader", "SreOperatorMetricsSourceDown"}
        wait_for(lambda: firing(url) == want, timeout=40, interval=0.5, what=f"{want} firing")
    finally:
        stop.set()
        prom.stop()
        exporter.shutdown()
        exporter.server_close()
