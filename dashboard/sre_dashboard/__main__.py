"""`sre-dashboard` (or `python -m sre_dashboard`): the dashboard on :8888.

Settings from the environment: `SRE_DASHBOARD_NAMESPACE` (the shop's, default shop),
`SRE_DASHBOARD_PROMETHEUS_URL`, `SRE_DASHBOARD_HOST`/`PORT` (127.0.0.1:8888; the chart sets
0.0.0.0), `SRE_DASHBOARD_HEALTH_SECONDS` (5), `SRE_DASHBOARD_MAX_STREAMS` (1000),
`SRE_DASHBOARD_ALLOWED_HOSTS` (comma-separated Host names served besides loopback and
`SRE_DASHBOARD_SERVICE_NAME`[.`SERVICE_NAMESPACE`]), `SRE_DASHBOARD_EXPOSE_RECORDS` (false: undo
records and environment values stay out of the API). Kubernetes credentials: in-cluster, else
$KUBECONFIG."""
from __future__ import annotations

import logging

import uvicorn

from sre_operator.adapters import kube

from .app import DashboardSettings, create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = DashboardSettings()
    kube.load_config()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
