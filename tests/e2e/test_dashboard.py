"""The dashboard in a real browser (Debian's Chromium through Playwright) against the shop on the
local cluster, real Prometheus and the operator: a person watches product go down, the incident
appear, the agents act, and the shop come back, live from the event stream (the page loads its
state once and polls nothing). Saves the screenshot the README shows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kopf.testing import KopfRunner

from localkube.cluster import Cluster
from localkube.testing import Traffic, wait_for
from shop.procs import free_port
from tests.e2e.conftest import OPERATOR_ARGS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"



@pytest.fixture
def dashboard(cluster: Cluster, shop: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "SRE_DASHBOARD_NAMESPACE": shop,
           "SRE_DASHBOARD_PROMETHEUS_URL": f"http://127.0.0.1:{cluster.host_port(30090)}",
           "SRE_DASHBOARD_HOST": "127.0.0.1", "SRE_DASHBOARD_PORT": str(port), "SRE_DASHBOARD_HEALTH_SECONDS": "2"}
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "sre_dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), 30, "the dashboard")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        assert "Traceback" not in (tmp_path / "dashboard.log").read_text()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_person_watches_the_agents_find_and_fix_a_fault(cluster: Cluster, shop: str, dashboard: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    from sre_operator.adapters import kube
    for k, v in {"KUBECONFIG": str(cluster.kubeconfig), "SRE_OPERATOR_WATCH_NAMESPACES": shop,
                 "SRE_OPERATOR_PROMETHEUS_URL": f"http://127.0.0.1:{cluster.host_port(30090)}",
                 "SRE_OPERATOR_DETECT_INTERVAL_SECONDS": "3", "SRE_OPERATOR_SETTLE_SECONDS": "20"}.items():
        monkeypatch.setenv(k, v)
    kube.load_config()
    traffic = Traffic(f"http://127.0.0.1:{cluster.host_port(30080)}")
    traffic.thread.start()
    requests: list[str] = []
    try:
        with KopfRunner(OPERATOR_ARGS) as runner, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("request", lambda r: requests.append(r.url.replace(dashboard, "")))
            page.goto(dashboard)
            page.wait_for_selector("#stream.on", timeout=20_000)
            # The healthy shop, live: every node ok once traffic has figures.
            page.wait_for_selector('g.node[data-service="product"][data-status="ok"]', timeout=90_000)
            wait_for(lambda: cluster.kubectl("get", "configmap", "sre-operator-known-good", "-n", shop,
                                             check=False).returncode == 0, 90, "a healthy reading")
            cluster.apply(
                f"apiVersion: sre.stratus.dev/v1alpha1\nkind: FaultScenario\nmetadata: {{name: zero, "
                f"namespace: {shop}}}\nspec: {{type: scale-to-zero, target: {{name: product}}, duration: 10m}}\n"
            )
            # Seen without reloading: product down, the scenario, an incident, then Resolved.
            page.wait_for_selector('g.node[data-service="product"][data-status="down"]', timeout=30_000)
            page.wait_for_selector('#scenarios li[data-scenario="zero"]', timeout=30_000)
            row = page.wait_for_selector("#incidents tbody tr[data-incident]", timeout=60_000)
            name = row.get_attribute("data-incident")
            assert name and name.startswith("product-unavailable-")
            page.wait_for_selector(f'tr[data-incident="{name}"][data-phase="Resolved"]', timeout=180_000)
            page.wait_for_selector('g.node[data-service="product"][data-status="ok"]', timeout=90_000)
            # The agents' log shows the pipeline's Events as they happened (Events come on
            # their own watch, so the Resolved line may follow the row by a moment).
            page.wait_for_function(
                "name => { const t = document.querySelector('#log').textContent;"
                " return t.includes('Incident/' + name) && t.includes('Resolved'); }",
                arg=name, timeout=30_000,
            )
            # The charts carry the marks of the incident.
            page.wait_for_selector("#chart-errors line.mark.detected", state="attached", timeout=10_000)
            page.wait_for_selector("#chart-errors line.mark.fault", state="attached", timeout=10_000)
            page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)
            # The detail: the pipeline's timeline with the action and its validation.
            page.click(f'tr[data-incident="{name}"]')
            page.wait_for_selector('#detail-steps li[data-kind="action"]', timeout=10_000)
            steps = page.text_content("#detail-steps") or ""
            assert "scale deployment/product" in steps and "validation" in steps
            assert "undo record" in steps
            page.screenshot(path=str(ROOT / "docs" / "dashboard-incident.png"), full_page=True)
            # A notification's link opens that incident's detail; a link for another namespace says so.
            linked = browser.new_page()
            linked.goto(f"{dashboard}/?namespace={shop}&incident={name}")
            linked.wait_for_selector(f'#detail[data-incident="{name}"]:not([hidden])', timeout=20_000)
            assert "scale deployment/product" in (linked.text_content("#detail-steps") or "")
            linked.goto(f"{dashboard}/?namespace=elsewhere&incident={name}")
            linked.wait_for_selector("#link-note:not([hidden])", timeout=20_000)
            assert "namespace elsewhere" in (linked.text_content("#link-note") or "")
            assert linked.is_hidden("#detail")
            linked.goto(f"{dashboard}/?namespace={shop}&incident=gone-1234")
            linked.wait_for_selector("#link-note:not([hidden])", timeout=20_000)
            assert "gone-1234 is not here" in (linked.text_content("#link-note") or "")
            browser.close()
        assert runner.exception is None, runner.output
    finally:
        traffic.stop.set()
        traffic.thread.join()
        cluster.kubectl("delete", "faultscenario", "zero", "-n", shop, "--timeout=60s", check=False)
    # Loaded once, then followed the stream: no polling.
    api = [r for r in requests if r.startswith("/api/")]
    assert api.count("/api/state") == 1 and api.count("/api/stream") >= 1, api
    assert all(r in ("/api/state", "/api/stream", "/api/series?minutes=15") or r.startswith("/api/incidents/")
               for r in api), api
    print(json.dumps(sorted(set(api))))
