"""`python -m localkube up|down|status`: the local cluster from the command line, with the port
mappings of kind-config.yaml (containerPort = NodePort on the node, hostPort on 127.0.0.1)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from . import netns
from .cluster import Cluster, ClusterError, PortMapping

DEFAULT_NAME = "sre"


def mappings_from_kind_config(path: Path) -> list[PortMapping]:
    config = yaml.safe_load(path.read_text()) or {}
    return [PortMapping(int(m["hostPort"]), int(m["containerPort"]))
            for node in config.get("nodes", []) for m in node.get("extraPortMappings", []) or []]


def _cluster(args: argparse.Namespace, mappings: list[PortMapping] | None = None) -> Cluster:
    data = Path(args.data_dir or f".cluster/{args.name}").resolve()
    out = os.environ.get("KUBECONFIG_OUT") or ".cluster/kubeconfig"
    return Cluster(args.name, data, api_host_port=getattr(args, "api_port", 0), mappings=mappings or [],
                   kubeconfig_out=Path(out).resolve())


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"localkube {prog}")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--data-dir")
    return p


def up_main(argv: list[str]) -> int:
    p = _parser("up")
    p.add_argument("--config", default="kind-config.yaml")
    p.add_argument("--api-port", type=int, default=0, help="host port for the API server (0: any free port)")
    args = p.parse_args(argv)
    try:
        netns.require_root()
        mappings = mappings_from_kind_config(Path(args.config)) if Path(args.config).exists() else []
        cluster = _cluster(args, mappings).up()
    except (netns.NotRoot, ClusterError, OSError) as exc:
        print(f"localkube: {exc}", file=sys.stderr)
        return 1
    print(f"localkube: cluster {cluster.name} is up in {cluster.state()['up_seconds']}s")
    print(f"  kubeconfig  {cluster.kubeconfig}")
    print(f"  API server  https://127.0.0.1:{cluster.api_port}")
    for m in mappings:
        print(f"  127.0.0.1:{cluster.host_port(m.node_port)} → node port {m.node_port}")
    print(f"  logs        {cluster.layout.logs}")
    print(f"try: KUBECONFIG={cluster.kubeconfig} kubectl get nodes,pods -A")
    return 0


def down_main(argv: list[str]) -> int:
    p = _parser("down")
    p.add_argument("--all", action="store_true", help="every localkube cluster on this machine")
    args = p.parse_args(argv)
    try:
        netns.require_root()
    except netns.NotRoot as exc:
        print(f"localkube: {exc}", file=sys.stderr)
        return 1
    names = {args.name}
    if args.all:
        names |= {n[3:].rsplit("-", 1)[0] for n in netns.list_names("lk-") if n.endswith("-node")}
    for name in sorted(names):
        args.name = name
        cluster = _cluster(args)
        cluster.down(purge=True)
        if cluster.kubeconfig_out and cluster.kubeconfig_out.exists() and name == DEFAULT_NAME:
            cluster.kubeconfig_out.unlink()
    return 0


def status_main(argv: list[str]) -> int:
    args = _parser("status").parse_args(argv)
    cluster = _cluster(args)
    state = cluster.state()
    from .controlplane import alive

    running = {n: alive(int(p)) for n, p in state.get("pids", {}).items()}
    print(f"cluster {args.name}: netns {'present' if netns.exists(cluster.node_netns) else 'absent'}")
    for n, ok in running.items():
        print(f"  {n:<24} {'running' if ok else 'stopped'}")
    return 0 if running and all(running.values()) else 1
