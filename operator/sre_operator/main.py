"""`sre-operator run [kopf options]`: the operator (the same as `kopf run -m sre_operator.handlers...`)."""
from __future__ import annotations

import os
import socket
import sys

import kopf

from . import kube

HANDLER_MODULES = ("sre_operator.handlers.faultscenarios", "sre_operator.handlers.incidents")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["version"]:
        from . import __version__
        print(f"sre-operator {__version__}")
        return 0
    if not argv or argv[0] != "run":
        print("usage: sre-operator run [--namespace=NS ... | --all-namespaces] [--liveness=URL] [--verbose]"
              " | sre-operator version",
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
    identity = f"sre-operator@{socket.gethostname()}/{os.getpid()}"
    kopf.run(clusterwide=not namespaces, namespaces=namespaces or None, standalone=True,
             liveness_endpoint=liveness, identity=identity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
