"""`python -m localkube {provision,up,down,status}`: the local cluster's command line."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "provision": ("localkube.provision", "main", "build or unpack the binaries into ~/.cache/sre-operator"),
    "up": ("localkube.cli", "up_main", "start a cluster (root)"),
    "down": ("localkube.cli", "down_main", "stop a cluster and remove everything it made"),
    "status": ("localkube.cli", "status_main", "show a cluster's components"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<10} {help_}" for name, (_, _, help_) in COMMANDS.items())
        print(f"usage: python -m localkube COMMAND [options]\n\ncommands:\n{lines}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[argv[0]]
    try:
        entry = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        print(f"localkube: `{argv[0]}` is not available in this build ({exc})", file=sys.stderr)
        return 2
    return int(entry(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
