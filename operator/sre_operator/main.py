"""`sre-operator run [kopf options]`: the operator (the same as `kopf run -m sre_operator.handlers...`).

With `--leader-election` (the chart turns it on), the process first takes the Lease
`sre-operator-leader` in its own namespace ($POD_NAMESPACE) and only then starts the operator;
a standby answers its liveness probe meanwhile. Losing the Lease ends the process (it restarts as a
standby); a clean stop releases it so a standby takes over at once."""
from __future__ import annotations

import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, cast
from urllib.parse import urlparse

import kopf

from .adapters import kube

if TYPE_CHECKING:
    from kopf._core.engines.peering import Identity  # kopf.run's type for `identity`, not re-exported

HANDLER_MODULES = ("sre_operator.handlers.faultscenarios", "sre_operator.handlers.incidents")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["version"]:
        from . import __version__
        print(f"sre-operator {__version__}")
        return 0
    if argv[:1] == ["dashboard"]:  # the same image serves the dashboard (sre_dashboard)
        from sre_dashboard.__main__ import main as dashboard
        dashboard()
        return 0
    if not argv or argv[0] != "run":
        print("usage: sre-operator run [--namespace=NS ... | --all-namespaces] [--liveness=URL] [--verbose]"
              " [--leader-election] | sre-operator dashboard | sre-operator version",
              file=sys.stderr)
        return 2
    import importlib

    kube.load_config()
    for mod in HANDLER_MODULES:
        importlib.import_module(mod)
    namespaces = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--namespace=")]
    liveness = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--liveness=")), None)
    kopf.configure(verbose="--verbose" in argv)
    # The identity is the pod's name: kopf's default asks the password database for the user,
    # which an arbitrary runAsUser does not have.
    identity = cast("Identity", f"sre-operator@{socket.gethostname()}/{os.getpid()}")
    elector = None
    if "--leader-election" in argv:
        from .adapters.lease import LeaderElector
        lease_seconds = float(os.environ.get("SRE_OPERATOR_LEASE_SECONDS", "15"))
        elector = LeaderElector(os.environ.get("POD_NAMESPACE", "default"), "sre-operator-leader", identity,
                                lease_seconds=lease_seconds, renew_seconds=max(1.0, lease_seconds / 3))
        with standby_health(liveness):
            elector.acquire()
        # Losing the Lease while leading: stop at once, without releasing or finishing anything.
        elector.keep(on_lost=lambda: os._exit(3), stop=threading.Event())
    try:
        kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=True,
                 liveness_endpoint=liveness, identity=identity)
    finally:
        if elector is not None and not elector.lost.is_set():
            elector.release()
    return 0


class standby_health:  # noqa: N801 - a context manager used like a function
    """Answers the liveness probe while the process waits for the Lease (kopf's own endpoint, on
    the same address, starts once it leads)."""

    def __init__(self, url: str | None) -> None:
        self.server: ThreadingHTTPServer | None = None
        if url:
            u = urlparse(url)

            class Handler(BaseHTTPRequestHandler):
                def log_message(self, *args: object) -> None:
                    pass

                def do_GET(self) -> None:  # noqa: N802
                    self.send_response(200 if self.path == u.path else 404)
                    self.end_headers()
                    self.wfile.write(b"standby\n")
            self.server = ThreadingHTTPServer((u.hostname or "0.0.0.0", u.port or 80), Handler)

    def __enter__(self) -> "standby_health":
        if self.server is not None:
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


if __name__ == "__main__":
    sys.exit(main())
