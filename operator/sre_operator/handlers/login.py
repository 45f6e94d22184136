"""How kopf reaches the API server: the pod's service account in a cluster, else $KUBECONFIG
(read when the operator starts, not when a client library was imported)."""
from __future__ import annotations

from typing import Any

import kopf


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
