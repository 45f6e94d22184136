"""A pod is not root on the machine: each container is PID 1 of its own namespace with its own
/proc and /dev, keeps only its capabilities, runs exec probes as itself, may not reach out of a
volume through a subPath, and host access is refused unless the namespace's Pod Security level
allows it (by the API server, and by the node agent on its own)."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from localkube.cluster import Cluster
from localkube.testing import wait_for

from .test_node_agent import ctr_status, logs, pod_json, ready

LOOK_AROUND = """
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("pid", os.getpid(), "pids", pids, flush=True)
print("init", open("/proc/1/cmdline").read().split(chr(0))[-2], flush=True)
print("pidns", os.readlink("/proc/self/ns/pid"), flush=True)
print("dev", sorted(os.listdir("/dev")), flush=True)
try:
    open("/proc/sys/kernel/hostname", "w").write("pwned")
    print("procsys writable", flush=True)
except OSError:
    print("procsys read-only", flush=True)
for line in open("/proc/self/status"):
    if line.startswith(("Cap", "NoNewPrivs")):
        key, _, value = line.partition(":")
        print(key, value.strip(), flush=True)
print("id", os.getuid(), os.getgid(), flush=True)
import sys
print("host", os.path.exists(sys.argv[1]), os.path.exists("/work/.library"), os.path.exists("/root/.cache"),
      open("/etc/shadow").read() == "", sorted(os.listdir("/tmp")), flush=True)
print("done", flush=True)
import time
time.sleep(3600)
"""


def _pod(ns: str, name: str, security: str, pod_security: str = "{}", probe: str = "",
         host_file: str = "/nonexistent") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {pod_security}
  containers:
  - name: main
    image: python:3.11
    command: ["python3", "-u", "-c", {json.dumps(LOOK_AROUND)}, "{host_file}", "look-around-marker"]
    env: [{{name: PROBE_ENV, value: "yes"}}]
    securityContext: {security}
{probe}"""


def _report(cluster: Cluster, ns: str, pod: str) -> dict[str, str]:
    out = wait_for(lambda: "done" in (text := logs(cluster, ns, pod)) and text, 60, f"{pod} to report")
    return {k: v for k, _, v in (ln.partition(" ") for ln in out.splitlines())}


def test_a_container_is_pid_1_of_its_own_namespace_with_its_own_proc_and_dev(cluster: Cluster, namespace: str,
                                                                              tmp_path: Path) -> None:
    secret = tmp_path / "someone-elses-secret"
    secret.write_text("s3cret")
    cluster.apply(_pod(namespace, "look", "{}", host_file=str(secret)))
    r = _report(cluster, namespace, "look")
    assert r["pid"].startswith("1 ")  # PID 1, and nothing of the machine's is visible
    assert json.loads(r["pid"].split(" ", 2)[2]) == [1]
    assert "look-around-marker" in r["init"]  # /proc/1 is the container itself, not the host's init
    assert r["pidns"] != os.readlink("/proc/self/ns/pid")
    devices = set(json.loads(r["dev"].replace("'", '"')))
    assert devices <= {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd",
                       "stdin", "stdout", "stderr"}, devices  # no disk, /dev/mem or /dev/kmsg of the host
    assert r["procsys"] == "read-only"
    # Root in a container reads none of the machine's private files: not the files of another
    # program under /tmp, the checkouts under /work, root's home, nor the password hashes.
    # The project's own source is the image (mounted where it is checked out): a checkout under /tmp
    # (a fresh clone for `.ci/run`) shows its top directory there, and nothing else may.
    mine = [Path(__file__).resolve().parents[2].relative_to("/tmp").parts[0]] \
        if Path(__file__).resolve().is_relative_to("/tmp") else []
    assert r["host"] == f"False False False True {mine}", r["host"]


def test_capabilities_user_and_no_new_privs_are_enforced(cluster: Cluster, namespace: str) -> None:
    cluster.apply(_pod(namespace, "root-default", "{}"))
    cluster.apply(_pod(namespace, "root-dropped", "{capabilities: {drop: [ALL]}}"))
    cluster.apply(_pod(namespace, "user", "{capabilities: {drop: [ALL]}, allowPrivilegeEscalation: false}",
                       "{runAsUser: 1234, runAsGroup: 2345}"))
    default = _report(cluster, namespace, "root-default")
    assert default["id"] == "0 0"
    assert int(default["CapBnd"], 16) == int(default["CapEff"], 16) == 0xA80425FB  # the runtime's default set
    dropped = _report(cluster, namespace, "root-dropped")
    assert dropped["id"] == "0 0"
    for key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        assert int(dropped[key], 16) == 0, (key, dropped)  # drop ALL really drops, root or not
    user = _report(cluster, namespace, "user")
    assert user["id"] == "1234 2345" and user["NoNewPrivs"] == "1"
    assert int(user["CapBnd"], 16) == 0 and int(user["CapEff"], 16) == 0


def test_an_exec_probe_runs_inside_the_container_as_its_user(cluster: Cluster, namespace: str) -> None:
    check = ('test "$(id -u)" = 1234 && test "$PROBE_ENV" = yes && grep -q look-around-marker /proc/1/cmdline '
             '&& grep -q "/pod.*/main" /proc/self/cgroup && grep -q "CapEff:.0000000000000000" /proc/self/status')
    probe = f"""    readinessProbe:
      exec: {{command: ["sh", "-c", {json.dumps(check)}]}}
      periodSeconds: 1
      failureThreshold: 1"""
    cluster.apply(_pod(namespace, "probed", "{capabilities: {drop: [ALL]}}", "{runAsUser: 1234}", probe))
    wait_for(lambda: ready(cluster, namespace, "probed"), 60, "the exec probe to pass")


def _named(cluster: Cluster, ns: str, pod: str, container: str) -> dict:
    statuses = pod_json(cluster, ns, pod).get("status", {}).get("containerStatuses") or []
    return next((s for s in statuses if s["name"] == container), {})


def _refused(cluster: Cluster, manifest: str) -> str:
    out = cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert out.returncode != 0, out.stdout
    return out.stderr


def _host_pod(ns: str, name: str, host_dir: str, gated: bool = False) -> str:
    gates = "  schedulingGates: [{name: test/hold}]\n" if gated else ""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
{gates}  containers:
  - {{name: main, image: busybox, command: ["sleep", "3600"], volumeMounts: [{{name: host, mountPath: /host}}]}}
  volumes: [{{name: host, hostPath: {{path: {host_dir}, type: DirectoryOrCreate}}}}]
"""


def test_host_access_is_refused_by_the_namespace_pod_security_level(cluster: Cluster, namespace: str,
                                                                     tmp_path: Path) -> None:
    host_dir = str(tmp_path / f"made-by-a-pod-{uuid.uuid4().hex[:6]}")
    # Unlabelled namespaces are baseline: no hostPath, no privileged container, no host namespaces.
    assert "hostPath" in _refused(cluster, _host_pod(namespace, "hp", host_dir))
    priv = f"""
apiVersion: v1
kind: Pod
metadata: {{name: priv, namespace: {namespace}}}
spec:
  hostPID: true
  containers: [{{name: main, image: busybox, command: ["sleep", "3600"], securityContext: {{privileged: true}}}}]
"""
    assert "privileged" in _refused(cluster, priv)
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    assert "hostPath" in _refused(cluster, _host_pod(namespace, "hp", host_dir))
    assert "privileged" in _refused(cluster, priv)
    assert not os.path.exists(host_dir)


def test_the_node_agent_refuses_host_access_on_its_own(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A pod admitted while its namespace was privileged, bound to the node after the level was
    lowered: the agent itself refuses it, before anything touches the machine."""
    host_dir = str(tmp_path / f"made-by-a-pod-{uuid.uuid4().hex[:6]}")
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    cluster.apply(_host_pod(namespace, "hp", host_dir, gated=True))
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline", "--overwrite")
    cluster.kubectl("patch", "pod", "hp", "-n", namespace, "--type=json",
                    "-p", '[{"op": "remove", "path": "/spec/schedulingGates"}]')
    st = wait_for(lambda: (s := ctr_status(cluster, namespace, "hp")).get("state", {}).get("waiting", {})
                  .get("reason") == "CreateContainerConfigError" and s, 60, "CreateContainerConfigError")
    assert "hostPath" in st["state"]["waiting"]["message"]
    assert pod_json(cluster, namespace, "hp")["status"]["phase"] == "Pending"
    assert not os.path.exists(host_dir)


def test_a_subpath_through_a_symlink_out_of_the_volume_is_refused(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: sub, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: plant
    image: busybox
    command: ["sh", "-c", "mkdir /vol/real && echo inside > /vol/real/f && ln -s real /vol/link && ln -s / /vol/escape"]
    volumeMounts: [{{name: vol, mountPath: /vol}}]
  containers:
  - name: good
    image: busybox
    command: ["sh", "-c", "cat /data/f; sleep 3600"]
    volumeMounts: [{{name: vol, mountPath: /data, subPath: link}}]
  - name: bad
    image: busybox
    command: ["sh", "-c", "ls /host; sleep 3600"]
    volumeMounts: [{{name: vol, mountPath: /host, subPath: escape}}]
  volumes: [{{name: vol, emptyDir: {{}}}}]
""")
    st = wait_for(lambda: (s := _named(cluster, namespace, "sub", "bad")).get("state", {}).get("waiting", {})
                  .get("reason") == "CreateContainerConfigError" and s, 60, "the bad container to be refused")
    assert "leads out of its volume" in st["state"]["waiting"]["message"]
    # A link that stays inside the volume is followed, as on a kubelet.
    wait_for(lambda: "inside" in logs(cluster, namespace, "sub", "-c", "good"), 60, "the good container's file")


def test_a_pre_stop_exec_hook_runs_inside_the_container_as_its_user(cluster: Cluster, namespace: str,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "hook"
    out.mkdir()
    out.chmod(0o777)
    # Only to read the hook's result from outside: a hostPath needs the privileged level.
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    hook = 'echo "$(id -u) $HOOK_ENV $(tr "\\0" " " < /proc/1/cmdline)" > /out/hook'
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: hooked, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 5
  securityContext: {{runAsUser: 1234}}
  containers:
  - name: main
    image: python:3.11
    command: ["python3", "-c", "import signal, sys, time; signal.signal(15, lambda *_: sys.exit(0)); time.sleep(3600)",
              "hook-marker"]
    env: [{{name: HOOK_ENV, value: from-the-pod}}]
    lifecycle: {{preStop: {{exec: {{command: ["sh", "-c", {json.dumps(hook)}]}}}}}}
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes: [{{name: out, hostPath: {{path: {out}}}}}]
""")
    wait_for(lambda: ready(cluster, namespace, "hooked"), 60, "the pod to run")
    cluster.kubectl("delete", "pod", "hooked", "-n", namespace, "--timeout=60s")
    said = (out / "hook").read_text().split()
    assert said[:2] == ["1234", "from-the-pod"] and said[-1] == "hook-marker", said


def test_node_state_is_private_secrets_stay_in_memory_and_etcd_wants_a_certificate(cluster: Cluster,
                                                                                    namespace: str) -> None:
    cluster.kubectl("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=password=hunter2")
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: holder, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: python:3.11
    command: ["python3", "-c", "print(open('/creds/password').read(), flush=True); import time; time.sleep(3600)"]
    volumeMounts: [{{name: creds, mountPath: /creds}}]
  volumes: [{{name: creds, secret: {{secretName: creds}}}}]
""")
    wait_for(lambda: "hunter2" in logs(cluster, namespace, "holder"), 60, "the pod to read its secret")
    uid = pod_json(cluster, namespace, "holder")["metadata"]["uid"]
    node = cluster.data / "node"
    for d in (cluster.data / "pki", node, node / "pods", node / "pods" / uid):
        assert d.stat().st_mode & 0o777 == 0o700, d
    ctr = node / "pods" / uid / "containers" / "main"
    for f in [*ctr.glob("0.*"), *(cluster.data / "pki").glob("*.key"), *cluster.data.glob("kubeconfig/*.conf")]:
        if f.is_file():
            assert f.stat().st_mode & 0o077 == 0, f  # the container's spec holds its env; its log may hold anything
    secret_dir = node / "pods" / uid / "volumes" / "creds"
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = {ln.split()[4]: ln.split(" - ")[1].split()[0] for ln in mountinfo}
    assert mounts.get(str(secret_dir)) == "tmpfs"  # never written to the disk
    # etcd answers only a client with a certificate of its own CA (the cluster CA's do not count).
    pki = cluster.data / "pki"
    bare = cluster.exec_in_node("curl", "-sk", "-m", "3", "https://127.0.0.1:2379/version")
    plain = cluster.exec_in_node("curl", "-s", "-m", "3", "http://127.0.0.1:2379/version")
    other_ca = cluster.exec_in_node("curl", "-sk", "-m", "3", "--cert", str(pki / "admin.crt"), "--key",
                                    str(pki / "admin.key"), "https://127.0.0.1:2379/version")
    good = cluster.exec_in_node("curl", "-s", "-m", "3", "--cacert", str(pki / "etcd" / "ca.crt"), "--cert",
                                str(pki / "etcd" / "apiserver-etcd-client.crt"), "--key",
                                str(pki / "etcd" / "apiserver-etcd-client.key"), "https://127.0.0.1:2379/version")
    assert "etcdserver" in good.stdout
    for refused in (bare, plain, other_ca):
        assert "etcdserver" not in refused.stdout, refused
