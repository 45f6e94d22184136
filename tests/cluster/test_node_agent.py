"""The node agent behaves as a kubelet: pods run as processes with their own address, DNS, env,
volumes and limits; probes, restarts, back-off, OOM kills, unknown images, logs, graceful stop and
adoption after the agent itself restarts. Everything here goes through the real API server."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from localkube import controlplane as cp
from localkube import netns
from localkube.binaries import find_binary
from localkube.cluster import Cluster
from localkube.node import cgroups
from localkube.testing import container_pid, wait_for


def pod_json(cluster: Cluster, ns: str, name: str) -> dict:
    out = cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def ctr_status(cluster: Cluster, ns: str, name: str, idx: int = 0) -> dict:
    st = pod_json(cluster, ns, name).get("status", {}).get("containerStatuses") or [{}]
    return st[idx]


def ready(cluster: Cluster, ns: str, name: str) -> bool:
    conds = pod_json(cluster, ns, name).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def logs(cluster: Cluster, ns: str, pod: str, *extra: str) -> str:
    return cluster.kubectl("logs", pod, "-n", ns, *extra, check=False).stdout


PROBE_SERVER = """
import http.server, os, pathlib, socket, sys
print("hostname", socket.gethostname(), flush=True)
print("resolv", " ".join(pathlib.Path("/etc/resolv.conf").read_text().split()), flush=True)
print("env", os.environ.get("GREETING"), os.environ.get("FROM_CM"), os.environ.get("MY_POD"),
      os.environ.get("MY_IP"), os.environ.get("KUBERNETES_SERVICE_HOST"), flush=True)
print("uid", os.getuid(), os.getgid(), sorted(os.getgroups()), flush=True)
print("token", len(pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token").read_text()) > 100, flush=True)
print("ns", pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text(), flush=True)
pathlib.Path("/scratch/x").write_text("ok")
try:
    pathlib.Path("/etc/should-fail").write_text("no")
    print("rootfs writable", flush=True)
except OSError:
    print("rootfs read-only", flush=True)
print("hidden", os.path.exists(sys.argv[1] + "/pki/ca.key"), flush=True)
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
os.chdir("/config")
http.server.ThreadingHTTPServer(("", 8000), H).serve_forever()
"""


def test_a_pod_gets_an_address_dns_env_volumes_and_a_user(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config, namespace: {namespace}}}
data: {{greeting: "v1", page.txt: "first"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {namespace}}}
spec:
  securityContext: {{runAsUser: 10001, runAsGroup: 10001, fsGroup: 2000, runAsNonRoot: true}}
  containers:
  - name: web
    image: python:3.11
    command: ["python3", "-c", {json.dumps(PROBE_SERVER)}, "{cluster.data}"]
    env:
    - {{name: GREETING, value: "hello $(MY_POD)"}}
    - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: MY_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: FROM_CM, valueFrom: {{configMapKeyRef: {{name: web-config, key: greeting}}}}}}
    ports: [{{name: http, containerPort: 8000}}]
    readinessProbe: {{httpGet: {{path: /page.txt, port: http}}, periodSeconds: 1}}
    securityContext: {{readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}}
    volumeMounts:
    - {{name: config, mountPath: /config}}
    - {{name: scratch, mountPath: /scratch}}
  volumes:
  - {{name: config, configMap: {{name: web-config}}}}
  - {{name: scratch, emptyDir: {{}}}}
""")
    wait_for(lambda: ready(cluster, namespace, "web"), 60, "the pod to be Ready")
    pod = pod_json(cluster, namespace, "web")
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cp.NODE_POD_CIDR)
    assert pod["status"]["hostIP"] == cp.NODE_IP and pod["status"]["phase"] == "Running"
    out = logs(cluster, namespace, "web")
    assert "hostname web" in out
    assert (f"resolv nameserver {cp.DNS_SERVICE_IP} search {namespace}.svc.cluster.local svc.cluster.local "
            "cluster.local options ndots:5") in out
    # MY_POD is defined after GREETING: as on a kubelet, $(MY_POD) stays unexpanded.
    assert f"env hello $(MY_POD) v1 web {ip} {cp.KUBERNETES_SERVICE_IP}" in out
    assert "uid 10001 10001 [2000]" in out
    assert "token True" in out and f"ns {namespace}" in out
    assert "rootfs read-only" in out
    assert "hidden False" in out  # the cluster's keys are not visible in pods
    # The pod answers on its own address from the node, and a changed ConfigMap reaches the file.
    curl = ["curl", "-s", "-m", "2", f"http://{ip}:8000/page.txt"]
    assert cluster.exec_in_node(*curl).stdout == "first"
    cluster.kubectl("patch", "configmap", "web-config", "-n", namespace, "--type=merge", "-p",
                    '{"data": {"page.txt": "second"}}')
    wait_for(lambda: cluster.exec_in_node(*curl).stdout == "second", 30, "the ConfigMap change in the pod")
    # A limit and a cgroup per container.
    uid = pod["metadata"]["uid"]
    assert cgroups.path("memory", cgroups.group(cluster.name, uid, "web")).is_dir()


def test_a_killed_process_is_restarted_and_its_previous_log_kept(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: sleeper, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: python:3.11
    command: ["python3", "-u", "-c", "import os, time; print('started as', os.getppid(), os.urandom(6).hex())
      ; time.sleep(3600)"]
""")
    wait_for(lambda: ctr_status(cluster, namespace, "sleeper").get("state", {}).get("running"), 60, "running")
    first = container_pid(cluster, namespace, "sleeper", "main")
    line = wait_for(lambda: logs(cluster, namespace, "sleeper").strip(), 10, "the first log line")
    assert line.startswith("started as 0 ")  # PID 1 of its own namespace: its parent is outside it
    first_token = line.split()[-1]
    os.kill(first, signal.SIGKILL)
    st = wait_for(lambda: (s := ctr_status(cluster, namespace, "sleeper")).get("restartCount") == 1
                  and "running" in s.get("state", {}) and s, 30, "a restart")
    assert st["lastState"]["terminated"]["exitCode"] == 137
    assert st["lastState"]["terminated"]["reason"] == "Error"
    second = container_pid(cluster, namespace, "sleeper", "main")
    assert second != first
    assert first_token in logs(cluster, namespace, "sleeper", "--previous")
    wait_for(lambda: "started as" in logs(cluster, namespace, "sleeper"), 10, "the new log line")
    assert first_token not in logs(cluster, namespace, "sleeper")


def test_a_crash_loop_backs_off(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: crasher, namespace: {namespace}}}
spec:
  containers:
  - {{name: main, image: busybox, command: ["sh", "-c", "echo bye; exit 3"]}}
""")
    st = wait_for(lambda: (s := ctr_status(cluster, namespace, "crasher")).get("state", {}).get("waiting", {})
                  .get("reason") == "CrashLoopBackOff" and s, 60, "CrashLoopBackOff")
    assert st["lastState"]["terminated"]["exitCode"] == 3
    count = st["restartCount"]
    time.sleep(3)  # inside the 10 s back-off nothing restarts
    assert ctr_status(cluster, namespace, "crasher")["restartCount"] == count
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                             "involvedObject.name=crasher,reason=BackOff", "-o", "name").stdout
    assert events.strip()


def test_a_container_over_its_memory_limit_is_oomkilled(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: hog, namespace: {namespace}}}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: python:3.11
    command: ["python3", "-c", "x = bytearray(256 * 1024 * 1024); print('survived')"]
    resources: {{limits: {{memory: 48Mi, cpu: 500m}}}}
""")
    pod = wait_for(lambda: (p := pod_json(cluster, namespace, "hog")).get("status", {}).get("phase") == "Failed"
                   and p, 60, "the pod to fail")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)
    assert "survived" not in logs(cluster, namespace, "hog")


def test_an_unknown_image_shows_image_pull_back_off(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: ghost, namespace: {namespace}}}
spec:
  containers: [{{name: main, image: registry.example/nobody/ghost:1.0}}]
""")
    seen = set()

    def reason() -> bool:
        r = ctr_status(cluster, namespace, "ghost").get("state", {}).get("waiting", {}).get("reason")
        seen.add(r)
        return r == "ImagePullBackOff"
    wait_for(reason, 60, "ImagePullBackOff")
    assert "ErrImagePull" in seen or "ImagePullBackOff" in seen
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=ghost",
                          "-o", "jsonpath={.items[*].message}").stdout
    assert 'Failed to pull image "registry.example/nobody/ghost:1.0"' in out


def test_probes_drive_readiness_and_liveness_restarts(cluster: Cluster, namespace: str) -> None:
    # Ready only while /tmp/ready exists; killed by its liveness probe once /tmp/alive is gone.
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: probed, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c",
              "touch /tmp/alive; sleep 3; touch /tmp/ready; sleep 3; rm /tmp/ready; sleep 3; rm /tmp/alive; sleep 3600"]
    readinessProbe: {{exec: {{command: ["cat", "/tmp/ready"]}}, periodSeconds: 1, failureThreshold: 1}}
    livenessProbe: {{exec: {{command: ["cat", "/tmp/alive"]}}, periodSeconds: 1, failureThreshold: 2}}
    volumeMounts: [{{name: tmp, mountPath: /tmp}}]
  volumes: [{{name: tmp, emptyDir: {{}}}}]
""")
    wait_for(lambda: ready(cluster, namespace, "probed"), 30, "Ready")
    wait_for(lambda: not ready(cluster, namespace, "probed"), 30, "not Ready again")
    st = wait_for(lambda: (s := ctr_status(cluster, namespace, "probed")).get("restartCount", 0) >= 1 and s,
                  40, "a liveness restart")
    assert st["lastState"]["terminated"]["exitCode"] in (137, 143)  # SIGTERM (or SIGKILL after the grace)
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=probed",
                             "-o", "jsonpath={.items[*].message}").stdout
    assert "Liveness probe failed" in events and "failed liveness probe, will be restarted" in events


def test_init_containers_run_first_and_share_volumes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: initd, namespace: {namespace}}}
spec:
  initContainers:
  - {{name: prepare, image: busybox, command: ["sh", "-c", "echo prepared > /work/state"],
      volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - {{name: main, image: busybox, command: ["sh", "-c", "cat /work/state; sleep 3600"],
      volumeMounts: [{{name: work, mountPath: /work}}]}}
  volumes: [{{name: work, emptyDir: {{}}}}]
""")
    wait_for(lambda: "prepared" in logs(cluster, namespace, "initd", "-c", "main"), 60, "main after init")
    pod = pod_json(cluster, namespace, "initd")
    init = pod["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert pod["status"]["phase"] == "Running"


def test_delete_stops_gracefully_and_removes_the_sandbox(cluster: Cluster, namespace: str) -> None:
    script = ("import signal, sys, time\n"
              "def bye(*_):\n    print('got SIGTERM', flush=True); time.sleep(1); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(3600)\n")
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: graceful, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 10
  containers: [{{name: main, image: python:3.11, command: ["python3", "-c", {json.dumps(script)}]}}]
""")
    wait_for(lambda: "up" in logs(cluster, namespace, "graceful"), 60, "the pod to start")
    uid = pod_json(cluster, namespace, "graceful")["metadata"]["uid"]
    log_path = next((cluster.data / "node" / "pods" / uid / "containers" / "main").glob("0.log"))
    pid = container_pid(cluster, namespace, "graceful", "main")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "graceful", "-n", namespace, "--wait=false")
    seen: list[str] = []

    def watch_log() -> None:
        while time.monotonic() - started < 15 and log_path.exists():
            try:
                seen.append(log_path.read_text())
            except FileNotFoundError:
                break
            time.sleep(0.05)
    t = threading.Thread(target=watch_log)
    t.start()
    wait_for(lambda: not pod_json(cluster, namespace, "graceful"), 30, "the pod object to go")
    t.join()
    took = time.monotonic() - started
    assert any("got SIGTERM" in s for s in seen)
    assert 1.0 <= took < 10, took  # waited for the handler, not for the whole grace period
    assert not os.path.exists(f"/proc/{pid}")
    assert not netns.exists(f"lk-{cluster.name}-p-{uid[:8]}")
    assert not cgroups.path("memory", cgroups.group(cluster.name, uid)).exists()


def test_a_restarted_agent_adopts_running_pods(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: keeper, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 3  # PID 1 without a SIGTERM handler: only SIGKILL ends it, as in any runtime
  containers:
  - {{name: main, image: python:3.11,
     command: ["python3", "-u", "-c", "import time\\nwhile True: print('tick'); time.sleep(0.5)"]}}
""")
    wait_for(lambda: ready(cluster, namespace, "keeper"), 60, "Ready")
    pid = container_pid(cluster, namespace, "keeper", "main")
    cluster.restart("node-agent")
    time.sleep(3)
    wait_for(lambda: "tick" in cluster.kubectl("logs", "keeper", "-n", namespace, "--tail=1", check=False).stdout,
             30, "logs through the new agent")
    st = ctr_status(cluster, namespace, "keeper")
    assert st["restartCount"] == 0 and st["ready"] is True
    assert container_pid(cluster, namespace, "keeper", "main") == pid and os.path.exists(f"/proc/{pid}")
    # The new agent still manages it: deleting the pod stops the process.
    cluster.kubectl("delete", "pod", "keeper", "-n", namespace, "--timeout=60s")
    assert not os.path.exists(f"/proc/{pid}")


def test_logs_follow_streams_new_lines(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: talker, namespace: {namespace}}}
spec:
  containers:
  - {{name: main, image: busybox,
     command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]}}
""")
    wait_for(lambda: "line 3" in logs(cluster, namespace, "talker"), 60, "some lines")
    argv = [str(find_binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "logs", "-f", "talker",
            "-n", namespace, "--tail=1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    got = [proc.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
    proc.kill()
    proc.wait()
    numbers = [int(x.split()[1]) for x in got]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    tail = logs(cluster, namespace, "talker", "--tail=2", "--timestamps")
    assert len(tail.splitlines()) == 2 and tail.split()[0].endswith("Z")


def test_a_service_whose_selector_matches_nothing_has_no_endpoints(cluster: Cluster, namespace: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: backend, namespace: {namespace}, labels: {{app: backend}}}}
spec:
  containers: [{{name: main, image: python:3.11, command: ["python3", "-m", "http.server", "8000"],
                 readinessProbe: {{tcpSocket: {{port: 8000}}, periodSeconds: 1}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: matches, namespace: {namespace}}}
spec: {{selector: {{app: backend}}, ports: [{{port: 80, targetPort: 8000}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: orphan, namespace: {namespace}}}
spec: {{selector: {{app: nobody}}, ports: [{{port: 80, targetPort: 8000}}]}}
""")
    ip = wait_for(lambda: ready(cluster, namespace, "backend") and pod_json(cluster, namespace, "backend")
                  ["status"]["podIP"], 60, "Ready")

    def addresses(svc: str) -> list[str]:
        out = cluster.kubectl("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={svc}",
                              "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}").stdout
        return out.split()
    wait_for(lambda: addresses("matches") == [ip], 30, "the matching Service's endpoint")
    assert addresses("orphan") == []
    orphan_ip = cluster.kubectl("get", "svc", "orphan", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}").stdout
    out = cluster.exec_in_node("curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://{orphan_ip}/")
    assert out.stdout == "000"  # rejected by kube-proxy: no endpoints


@pytest.mark.parametrize("claim", ["data"])
def test_a_claim_gets_a_volume_that_outlives_its_pod(cluster: Cluster, namespace: str, claim: str) -> None:
    pod = f"""
apiVersion: v1
kind: Pod
metadata: {{name: writer, namespace: {namespace}}}
spec:
  securityContext: {{runAsUser: 10001, fsGroup: 10001}}
  containers:
  - {{name: main, image: busybox,
     command: ["sh", "-c", "cat /data/count 2>/dev/null; echo x >> /data/count; sleep 3600"],
     volumeMounts: [{{name: d, mountPath: /data}}]}}
  volumes: [{{name: d, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""
    cluster.apply(f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}, namespace: {namespace}}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 10Mi}}}}}}
""" + "---" + pod)
    wait_for(lambda: ready(cluster, namespace, "writer"), 60, "the pod with its claim")
    phase = cluster.kubectl("get", "pvc", claim, "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Bound"
    cluster.kubectl("delete", "pod", "writer", "-n", namespace, "--timeout=60s")
    cluster.apply(pod)
    wait_for(lambda: "x" in logs(cluster, namespace, "writer"), 60, "the second pod to see the first one's data")
    pv = cluster.kubectl("get", "pvc", claim, "-n", namespace, "-o", "jsonpath={.spec.volumeName}").stdout
    cluster.kubectl("delete", "pod", "writer", "-n", namespace, "--timeout=60s")
    cluster.kubectl("delete", "pvc", claim, "-n", namespace, "--timeout=60s")
    wait_for(lambda: cluster.kubectl("get", "pv", pv, check=False).returncode != 0, 30, "the volume to be deleted")
    assert not (cluster.data / "node" / "pv" / pv).exists()


def test_a_volume_over_the_programs_location_does_not_hide_them(cluster: Cluster, namespace: str) -> None:
    # A checkout under /tmp and a pod with an emptyDir at /tmp: the mapped image's Python and the
    # project's packages must still be there.
    import sys
    hidden = os.path.dirname(sys.prefix)
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: shadowed, namespace: {namespace}}}
spec:
  securityContext: {{runAsUser: 10001, runAsGroup: 10001}}
  containers:
  - name: payment
    image: sre-operator/shop-payment:0.1.0
    env: [{{name: SHOP_PORT, value: "5003"}}, {{name: SHOP_DB_PATH, value: "{hidden}/payment.db"}}]
    ports: [{{name: http, containerPort: 5003}}]
    readinessProbe: {{httpGet: {{path: /health, port: http}}, periodSeconds: 1}}
    volumeMounts: [{{name: over, mountPath: "{hidden}"}}]
  volumes: [{{name: over, emptyDir: {{}}}}]
""")
    wait_for(lambda: ready(cluster, namespace, "shadowed"), 60, "the shop service to start under the volume")
    # The operator's image too (its package lives in another directory of the project).
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: shadowed-operator, namespace: {namespace}}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 10001, runAsGroup: 10001}}
  containers:
  - name: operator
    image: sre-operator/operator:0.1.0
    args: [version]
    volumeMounts: [{{name: over, mountPath: "{hidden}"}}]
  volumes: [{{name: over, emptyDir: {{}}}}]
""")
    wait_for(lambda: cluster.kubectl("get", "pod", "shadowed-operator", "-n", namespace, "-o",
                                     "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"), 60,
             "the operator's image to run under the volume")
    logs = cluster.kubectl("logs", "shadowed-operator", "-n", namespace).stdout
    assert logs.startswith("sre-operator 0.1.0"), logs
