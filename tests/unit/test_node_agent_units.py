"""The node agent's pure parts: env building, image mapping, CRI log rendering, the atomic volume
writer, probe thresholds, address management and the shim's in-root path resolution."""
from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from localkube.node import env, images, probes, sandbox, server, shim, volumes

POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa"}, "status": {}}


def lookup(kind: str, name: str) -> dict | None:
    data = {("configmaps", "cm"): {"data": {"A": "1", "B": "2"}},
            ("secrets", "sec"): {"data": {"PASSWORD": base64.b64encode(b"hunter2").decode()}}}
    return data.get((kind, name))


def test_env_follows_the_kubelet_order_and_expansion_rules() -> None:
    ctr = {"name": "c", "resources": {"limits": {"memory": "128Mi"}},
           "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
           "env": [{"name": "X", "value": "x"},
                   {"name": "Y", "value": "$(X)-$(Z)-$$(X)"},
                   {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                   {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                   {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                   {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}}]}
    out = env.build(POD, ctr, {"PATH": "/bin"}, [], lookup, "172.30.0.2", "10.244.0.9")
    assert out["CM_A"] == "1" and out["PATH"] == "/bin"
    assert out["Y"] == "x-$(Z)-$(X)"
    assert (out["POD"], out["IP"], out["APP"], out["MEM"], out["PW"]) == (
        "web-1",
        "10.244.0.9",
        "web",
        "128",
        "hunter2",
    )


def test_a_missing_reference_is_a_config_error_unless_optional() -> None:
    bad = {"name": "c", "env": [{"name": "Q", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(env.EnvError, match='configmap "nope"'):
        env.build(POD, bad, {}, [], lookup, "h")
    bad["env"][0]["valueFrom"]["configMapKeyRef"]["optional"] = True
    assert "Q" not in env.build(POD, bad, {}, [], lookup, "h")


def test_service_links_are_docker_style() -> None:
    svc = {"metadata": {"name": "payment-api"},
           "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "http", "port": 5003, "protocol": "TCP"}]}}
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    out = env.service_links([svc, headless])
    assert out["PAYMENT_API_SERVICE_HOST"] == "10.96.0.7"
    assert out["PAYMENT_API_SERVICE_PORT_HTTP"] == "5003"
    assert out["PAYMENT_API_PORT_5003_TCP"] == "tcp://10.96.0.7:5003"
    assert not any(k.startswith("H_") for k in out)


@pytest.mark.parametrize(("image", "repo"), [
    ("nginx", "nginx"), ("nginx:1.27", "nginx"), ("docker.io/library/nginx:1.27", "nginx"),
    ("docker.io/prom/prometheus:v3.7.0", "prom/prometheus"), ("localhost:5000/a/b:1", "localhost:5000/a/b"),
    ("registry.k8s.io/pause:3.10@sha256:abc", "registry.k8s.io/pause"), ("sre-operator/shop-order:0.1.0",
                                                                         "sre-operator/shop-order")])
def test_image_repository(image: str, repo: str) -> None:
    assert images.repository(image) == repo


def test_images_map_to_programs_and_unknown_ones_fail_to_pull() -> None:
    img = images.resolve("sre-operator/shop-order:0.1.0", python="/venv/bin/python")
    assert img.entrypoint == ["/venv/bin/python", "-m", "shop.order"]
    assert images.argv(img, None, None) == ["/venv/bin/python", "-m", "shop.order"]
    nginx = images.resolve("nginxinc/nginx-unprivileged:1.27-alpine")
    assert images.argv(nginx, ["nginx", "-c", "x"], None) == ["nginx", "-c", "x"]  # command drops cmd
    assert images.argv(nginx, None, ["-t"]) == ["-t"]  # args replace cmd
    assert nginx.stop_signal == "SIGQUIT"
    with pytest.raises(images.ImageError, match=re.escape('Failed to pull image "ghcr.io/x/y:1"')):
        images.resolve("ghcr.io/x/y:1")


def test_every_mapped_image_names_a_program_that_exists_or_a_provisioned_binary() -> None:
    for repo, entry in images.load_map().items():
        argv = (entry.get("entrypoint") or []) + (entry.get("cmd") or [])
        assert argv, repo
        first = argv[0]
        if first.startswith("{"):
            assert first == "{python}" or first.startswith("{bin:"), repo
        else:
            assert any(os.access(Path(d) / first, os.X_OK) for d in images.DEFAULT_PATH.split(":")), repo


def test_cri_log_lines_render_with_partials_tail_and_timestamps(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"2026-11-25T10:00:00.000000000Z stdout F one\n"
                    b"2026-11-25T10:00:01.000000000Z stderr P tw\n"
                    b"2026-11-25T10:00:01.000000000Z stderr F o\n"
                    b"2026-11-25T10:00:02.000000000Z stdout F three\n"
                    b"2026-11-25T10:00:03.000000000Z stdout F half-writ")
    lines, end = server.read_tail(log, None)
    assert server.render(lines, False, None) == b"one\ntwo\nthree\n"
    assert end == log.stat().st_size - len(b"2026-11-25T10:00:03.000000000Z stdout F half-writ")
    tail, _ = server.read_tail(log, 2)
    assert server.render(tail, True, None) == b"2026-11-25T10:00:02.000000000Z three\n"
    since = server._ts("2026-11-25T10:00:01.500000")
    assert server.render(lines, False, since) == b"three\n"


def test_the_atomic_writer_swaps_data_and_drops_stale_keys(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert volumes.write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    assert (target / "a").is_symlink() and os.readlink(target / "a") == "..data/a"
    assert not volumes.write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert volumes.write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_text() == "new"
    assert not (target / "dir").exists()
    assert len([p for p in target.iterdir() if p.name.startswith("..") and p.name != "..data"]) == 1


def test_probe_thresholds() -> None:
    st = probes.ProbeState("readiness", {"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 2}, 0.0)
    assert st.due(0.0)
    assert st.record(True, "", 0.0) is None
    assert st.record(True, "", 1.0) is True
    assert st.record(False, "x", 2.0) is None
    assert st.record(False, "x", 3.0) is False
    assert not st.due(3.5) and st.due(4.0)
    assert probes.resolve_port("http", {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}) == 8080
    with pytest.raises(ValueError, match="named port"):
        probes.resolve_port("metrics", {"name": "c", "ports": []})


def test_ipam_keeps_addresses_per_pod_and_hands_a_released_one_out_last(tmp_path: Path) -> None:
    ipam = sandbox.Ipam(tmp_path / "ipam.json", "10.244.0.0/29")
    a, b = ipam.allocate("a"), ipam.allocate("b")
    assert (a, b) == ("10.244.0.2", "10.244.0.3")
    assert sandbox.Ipam(tmp_path / "ipam.json", "10.244.0.0/29").allocate("a") == a  # survives a restart
    # A pod replaced (Recreate: the old one gone first) gets the next address, not the one just given
    # back, whose old owner's MAC its neighbours still hold.
    ipam.release("a")
    assert ipam.allocate("c") == "10.244.0.4"
    # The cursor survives a restart too; past the end it wraps round to what is free.
    assert sandbox.Ipam(tmp_path / "ipam.json", "10.244.0.0/29").allocate("d") == "10.244.0.5"
    assert [ipam.allocate(u) for u in "ef"] == ["10.244.0.6", a]  # .1 is the gateway, .7 the broadcast
    with pytest.raises(sandbox.SandboxError, match="no free address"):
        ipam.allocate("g")
    ipam.release("_last")  # not a pod: the cursor stays
    ipam.release("b")
    assert ipam.allocate("h") == b


def test_paths_resolve_inside_the_container_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    os.symlink("/run", tmp_path / "var" / "run")  # absolute: must stay inside the root
    os.symlink("../../etc", tmp_path / "run" / "up")
    assert shim.in_root(root, "/var/run/secrets") == f"{root}/run/secrets"
    assert shim.in_root(root, "/run/up/x") == f"{root}/etc/x"
    assert shim.in_root(root, "/../../x") == f"{root}/x"


def test_the_api_server_service_is_in_the_env_even_without_service_links() -> None:
    master = {"metadata": {"name": "kubernetes", "namespace": "default"},
              "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}}
    other = {"metadata": {"name": "payment", "namespace": "shop"},
             "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 5003}]}}
    pod = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {"enableServiceLinks": False}}
    got = env.build(pod, {"name": "c"}, {}, [other, master], lambda kind, name: None, "10.0.0.2")
    assert got["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and got["KUBERNETES_SERVICE_PORT"] == "443"
    assert "PAYMENT_SERVICE_HOST" not in got
    pod["spec"]["enableServiceLinks"] = True
    assert env.build(pod, {"name": "c"}, {}, [other, master], lambda kind, name: None,
                     "10.0.0.2")["PAYMENT_SERVICE_HOST"] == "10.96.0.9"
