"""`sre-operator run [-n NS ... | -A] [--liveness URL] [--verbose] [--leader-election] [--log-format F]`: the operator
(the same as `kopf run -m sre_operator.handlers...`); `sre-operator incidents | describe | approve |
reject` for people (`cli.py`); `sre-operator dashboard | version`.

With `--leader-election` (the chart turns it on), the process first takes the Lease
`sre-operator-leader` in its own namespace ($POD_NAMESPACE) and only then starts the operator;
a standby answers its liveness probe meanwhile. Losing the Lease ends the process (it restarts as a
standby); a clean stop releases it so a standby takes over at once.

The operator's own metrics (`SRE_OPERATOR_METRICS_PORT`, 9464; 0: off) are served by every replica
from the start, the standby included: `sre_operator_leader` is 0 there and 1 once the process leads,
so `sum(sre_operator_leader)` tells that exactly one replica acts (0: no leader, an alert), and every
scraped pod answers (a standby that served nothing would look like a pod that is down). Only the
leader runs the detector and the pipeline, so only its other figures move."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, cast
from urllib.parse import urlparse

import kopf

from . import cli
from .adapters import kube
from .domain.ports import ClusterError
from .domain.telemetry import NO_TELEMETRY, Telemetry
from .domain.tracing import NO_SPANS, Spans
from .settings import Settings

if TYPE_CHECKING:
    from kopf._core.engines.peering import Identity  # kopf.run's type for `identity`, not re-exported

log = logging.getLogger("sre_operator")
# The collector's thresholds (young, middle, old; Python's are 700, 10, 10). The detector decodes
# every watched object each cycle, some hundred thousand dicts and lists a page of a list, alive
# while that page's namespaces are decided: with the defaults they reach the oldest generation, and a
# collection of the whole heap follows every few pages, more than half of a cycle's time at 1,000
# namespaces (bench/cycle_profile.py). Collected every 50,000 new objects, most of a page is freed
# before it is ever promoted; garbage that only the collector frees (cycles) waits a little longer.
GC_THRESHOLDS = (50_000, 20, 10)
HANDLER_MODULES = ("sre_operator.handlers.faultscenarios", "sre_operator.handlers.incidents")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sre-operator", description="An autonomous SRE for Kubernetes.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the operator")
    where = run.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="a namespace to serve (repeat for several)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace (the default)")
    run.add_argument("--liveness", metavar="URL", help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--verbose", action="store_true")
    run.add_argument("--log-format", choices=("plain", "full", "json"),
                     help="text (full: with time and logger) or one JSON document per line "
                          "(default: SRE_OPERATOR_LOG_FORMAT, full)")
    run.add_argument("--leader-election", action="store_true",
                     help="take the Lease sre-operator-leader in $POD_NAMESPACE before acting")
    sub.add_parser("dashboard", help="serve the dashboard (sre_dashboard)")
    sub.add_parser("version", help="print the version")
    ls = sub.add_parser("incidents", help="list Incidents")
    scope = ls.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", metavar="NS")
    scope.add_argument("-A", "--all-namespaces", action="store_true")
    desc = sub.add_parser("describe", help="one Incident as a timeline")
    desc.add_argument("name")
    desc.add_argument("-n", "--namespace", metavar="NS")
    for verb in ("approve", "reject"):
        cmd = sub.add_parser(verb, help=f"{verb} the attempt an Incident waits for approval of")
        cmd.add_argument("name")
        cmd.add_argument("-n", "--namespace", metavar="NS")
        cmd.add_argument("--attempt", type=int, help="the attempt meant (refused if another one is waiting)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "version":
        from . import __version__
        print(f"sre-operator {__version__}")
        return 0
    if args.command == "dashboard":  # the same image serves the dashboard (sre_dashboard)
        from sre_dashboard.__main__ import main as dashboard
        dashboard()
        return 0
    kube.load_config()
    if args.command == "run":
        return run(args.namespace, args.liveness, args.verbose, args.leader_election, args.log_format)
    return people(args)


def people(args: argparse.Namespace) -> int:
    """The commands for people (`cli.py`), through the Kubernetes adapter."""
    cluster = kube.Kube()
    namespace = args.namespace or kube.current_namespace()
    try:
        if args.command == "incidents":
            names = kube.namespaces(cluster) if args.all_namespaces else [namespace]
            print(cli.table([i for ns in names for i in cluster.list_objects("Incident", ns)]))
        elif args.command == "describe":
            print(cli.describe(cluster, namespace, args.name))
        else:
            print(cli.decide(cluster, namespace, args.name, approve=args.command == "approve", attempt=args.attempt))
    except (cli.CommandError, ClusterError) as exc:
        print(f"sre-operator {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


LOG_FORMATS = {"plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}


def run(namespaces: list[str], liveness: str | None, verbose: bool, leader_election: bool,
        log_format: str | None = None) -> int:
    import importlib

    tune_collector()
    for mod in HANDLER_MODULES:
        importlib.import_module(mod)
    settings = Settings()  # the one reading of the environment, handed to the handlers in the memo
    kopf.configure(verbose=verbose, log_format=LOG_FORMATS[log_format or settings.log_format])
    telemetry = serve_metrics(settings.metrics_port)
    spans: Spans = NO_SPANS
    if settings.otlp_endpoint:
        from .adapters.spans import OtlpSpans
        spans = OtlpSpans(settings.otlp_endpoint)
        log.info("spans to %s", settings.otlp_endpoint)
    telemetry.leading(not leader_election)
    # The identity is the pod's name: kopf's default asks the password database for the user,
    # which an arbitrary runAsUser does not have.
    identity = cast("Identity", f"sre-operator@{socket.gethostname()}/{os.getpid()}")
    elector = None
    if leader_election:
        from .adapters.lease import LeaderElector
        lease_seconds = float(os.environ.get("SRE_OPERATOR_LEASE_SECONDS", "15"))
        elector = LeaderElector(os.environ.get("POD_NAMESPACE", "default"), "sre-operator-leader", identity,
                                lease_seconds=lease_seconds, renew_seconds=max(1.0, lease_seconds / 3))
        with standby_health(liveness):
            elector.acquire()
        telemetry.leading(True)
        # Losing the Lease while leading: stop at once, without releasing or finishing anything.
        elector.keep(on_lost=lambda: os._exit(3), stop=threading.Event())
    try:
        kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=True,
                 liveness_endpoint=liveness, identity=identity,
                 memo=kopf.Memo(settings=settings, telemetry=telemetry, spans=spans))
    finally:
        telemetry.leading(False)
        if elector is not None and not elector.lost.is_set():
            elector.release()
    return 0


def tune_collector() -> None:
    """The garbage collector tuned for the operator's process (`GC_THRESHOLDS`)."""
    gc.set_threshold(*GC_THRESHOLDS)


def serve_metrics(port: int) -> Telemetry:
    """The operator's metrics on `port` (0: none, nothing recorded). A port already taken (two
    operators on one machine) costs the metrics, never the operator: it says so and runs on."""
    if not port:
        return NO_TELEMETRY
    from .adapters.telemetry import PrometheusTelemetry
    telemetry = PrometheusTelemetry()
    try:
        telemetry.serve(port)
    except OSError as exc:
        log.warning("metrics not served on :%d (%s); SRE_OPERATOR_METRICS_PORT picks another, 0 turns them off",
                    port, exc)
        return NO_TELEMETRY
    log.info("metrics on :%d/metrics", port)
    return telemetry


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

                def do_GET(self) -> None:
                    self.send_response(200 if self.path == u.path else 404)
                    self.end_headers()
                    self.wfile.write(b"standby\n")
            # The probe's address as given (the chart's: 0.0.0.0, so the kubelet reaches it).
            self.server = ThreadingHTTPServer((u.hostname or "0.0.0.0", u.port or 80), Handler)  # noqa: S104

    def __enter__(self) -> standby_health:
        if self.server is not None:
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


if __name__ == "__main__":
    sys.exit(main())
