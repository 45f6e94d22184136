"""One pod on the process node, driven by its own thread: sandbox, volumes, init containers, then
containers with probes, restarts and backoff, and the pod's status written back to the API server.

Everything a container attempt leaves is on disk under `pods/<uid>/containers/<name>/<attempt>.*`
(spec, state, exit, log), so a restarted agent picks up where the last one left: running
containers are adopted, finished ones are restarted per the pod's restart policy.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..controlplane import alive as _pid_alive
from . import cgroups, images, linux, probes, security
from . import env as envmod
from . import sandbox as sbx
from .kubeapi import ApiError
from .nodestatus import now as rfc3339
from .volumes import VolumeError, VolumeManager

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("localkube.node")

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0  # a container that ran this long starts its backoff afresh
IMAGE_BACKOFF_START = 5.0


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class Container:
    spec: dict
    init: bool
    dir: Path
    restart_count: int = 0
    attempt: int | None = None  # the attempt whose files describe the current/last run
    running: dict | None = None  # state.json of a live attempt
    terminated: dict | None = None  # exit.json of the current attempt once it ended
    last_terminated: dict | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    next_start: float = 0.0
    backoff: float = 0.0
    image_backoff: float = 0.0
    probes: dict[str, probes.ProbeState] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    succeeded: bool = False  # init containers: finished with exit 0
    kill_reason: str = ""

    @property
    def name(self) -> str:
        return self.spec["name"]

    def files(self, attempt: int) -> dict[str, Path]:
        return {k: self.dir / f"{attempt}.{k}" for k in ("spec.json", "state.json", "exit.json", "log", "mnt")}

    def log_path(self, previous: bool = False) -> Path | None:
        if self.attempt is None:
            return None
        n = self.attempt - 1 if previous else self.attempt
        return self.dir / f"{n}.log" if n >= 0 else None


class PodWorker(threading.Thread):
    def __init__(self, agent: Agent, pod: dict) -> None:
        super().__init__(name=f"pod-{pod['metadata']['namespace']}/{pod['metadata']['name']}", daemon=True)
        self.agent = agent
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.dir = agent.pods_dir / self.uid
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.gone = False  # the pod no longer exists in the API
        self.finished = False
        self.sandbox: sbx.Sandbox | None = None
        self.volumes: VolumeManager | None = None
        self.volumes_synced = 0.0
        self.start_time = pod.get("status", {}).get("startTime") or rfc3339()
        self.last_status: dict | None = None
        self.pod_error = ""
        self.containers: dict[str, Container] = {}
        for init, key in ((True, "initContainers"), (False, "containers")):
            for spec in pod["spec"].get(key) or []:
                c = Container(spec, init, self.dir / "containers" / spec["name"])
                self._adopt(c)
                self.containers[c.name] = c
        self.transitions: dict[str, tuple[str, str]] = {
            c["type"]: (c["status"], c.get("lastTransitionTime", ""))
            for c in pod.get("status", {}).get("conditions") or []
        }

    # -- outside API ------------------------------------------------------------------------

    @property
    def ns(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def name_(self) -> str:
        return self.pod["metadata"]["name"]

    def update(self, pod: dict) -> None:
        with self.lock:
            self.pod = pod
        self.wake.set()

    def mark_gone(self) -> None:
        self.gone = True
        self.wake.set()

    # -- thread ----------------------------------------------------------------------------

    def run(self) -> None:
        while not self.finished:
            try:
                if self.step():
                    break
            except Exception:
                log.exception("pod %s/%s: sync failed", self.ns, self.name_)
            self.wake.wait(timeout=0.5)
            self.wake.clear()
        self.finished = True

    def step(self) -> bool:
        """One sync; returns True when the worker is done (pod deleted and cleaned up)."""
        with self.lock:
            pod = self.pod
        if self.gone or pod["metadata"].get("deletionTimestamp"):
            self.terminate(pod)
            return True
        phase = pod.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed") and self.last_status is None and not any(
                c.running for c in self.containers.values()):
            return False  # a finished pod from before: nothing to run, only to keep its logs
        if not self._admitted(pod):
            self._post_status(pod)
            return False
        if not self._ensure_sandbox(pod):
            self._post_status(pod)
            return False
        if not self._ensure_volumes(pod):
            self._post_status(pod)
            return False
        for c in self.containers.values():
            self._poll(c)
        if self._run_init_containers(pod):
            for c in self.containers.values():
                if not c.init:
                    self._drive(pod, c)
        self._post_status(pod)
        return False

    # -- sandbox and volumes ---------------------------------------------------------------

    def _admitted(self, pod: dict) -> bool:
        """The node's own Pod Security check, before anything of the pod touches the machine (a
        hostPath is not even looked at). Containers adopted from an earlier agent are not judged again."""
        if self.sandbox is not None or any(c.attempt is not None for c in self.containers.values()):
            return True
        found = security.violations(pod, self.agent.namespace_level(self.ns))
        if not found:
            return True
        msg = (f'pod security level "{self.agent.namespace_level(self.ns)}" of namespace {self.ns} '
               f"forbids {', '.join(found)}")
        for c in self.containers.values():
            if c.waiting_message != msg:
                c.waiting_reason, c.waiting_message = "CreateContainerConfigError", msg
                if not c.init:
                    self.agent.event(pod, "Warning", "Failed", f"Error: {msg}")
        return False

    def _ensure_sandbox(self, pod: dict) -> bool:
        if self.sandbox is not None:
            return True
        a = self.agent
        ip = a.ipam.allocate(self.uid)
        sb = sbx.Sandbox(a.cluster, self.uid, ip, self.dir / "sandbox")
        hostname = pod["spec"].get("hostname") or self.name_
        try:
            sbx.create(sb, a.pod_gateway, a.pod_prefix, self.ns, hostname[:63], a.dns_ip, a.domain,
                       pod["spec"].get("dnsConfig"))
        except sbx.SandboxError as exc:
            self.pod_error = str(exc)
            self.agent.event(pod, "Warning", "FailedCreatePodSandBox", str(exc))
            return False
        self.sandbox = sb
        return True

    def _ensure_volumes(self, pod: dict) -> bool:
        if self.volumes is None:
            self.volumes = VolumeManager(self.agent.api, pod, self.dir / "volumes", self.agent.node_ip,
                                         self.agent.ca_cert, self.sandbox.ip if self.sandbox else "")
        now = time.monotonic()
        if self.volumes_synced and now - self.volumes_synced < self.agent.volume_resync:
            return True
        self.volumes.pod = pod
        try:
            self.volumes.sync()
        except (VolumeError, ApiError, envmod.EnvError) as exc:
            if not self.volumes_synced:
                if self.pod_error != str(exc):
                    self.agent.event(pod, "Warning", "FailedMount", str(exc))
                self.pod_error = str(exc)
                return False
            log.warning("pod %s/%s: volume refresh: %s", self.ns, self.name_, exc)
        self.pod_error = ""
        self.volumes_synced = now
        return True

    # -- containers ------------------------------------------------------------------------

    def _adopt(self, c: Container) -> None:
        """Pick up what an earlier agent left on disk for this container."""
        if not c.dir.exists():
            return
        attempts = sorted(int(p.name.split(".")[0]) for p in c.dir.glob("*.state.json"))
        if not attempts:
            return
        n = attempts[-1]
        c.attempt = n
        c.waiting_reason = ""
        c.restart_count = n
        files = c.files(n)
        state = _read_json(files["state.json"])
        exit_ = _read_json(files["exit.json"])
        if n > 0:
            c.last_terminated = _read_json(c.files(n - 1)["exit.json"])
        if exit_ is not None:
            c.terminated = exit_
            c.succeeded = c.init and exit_.get("exitCode") == 0
        elif state and _pid_alive(state["pid"]) and _pid_alive(state.get("shimPid", state["pid"])):
            c.running = state
            c.started = True
            self._arm_probes(c, adopted=True)
        elif state:
            c.terminated = {"exitCode": 137, "signal": 9, "reason": "Unknown",
                            "startedAt": state.get("startedAt"), "finishedAt": rfc3339()}

    def _poll(self, c: Container) -> None:
        if c.running is None or c.attempt is None:
            return
        exit_ = _read_json(c.files(c.attempt)["exit.json"])
        if exit_ is None:
            if not _pid_alive(c.running.get("shimPid", c.running["pid"])):
                exit_ = {"exitCode": 137, "signal": 9, "startedAt": c.running.get("startedAt"),
                         "finishedAt": rfc3339(), "reason": "Unknown"}
            else:
                return
        c.running = None
        c.terminated = exit_
        c.ready = False
        c.probes = {}
        ran = time.time() - _ts(exit_.get("startedAt"))
        if ran > BACKOFF_RESET_AFTER:
            c.backoff = 0.0
        if c.init and exit_.get("exitCode") == 0:
            c.succeeded = True
        reason = _reason(exit_, c.kill_reason)
        if reason == "OOMKilled":
            self.agent.event(self.pod, "Warning", "OOMKilled",
                             f"Container {c.name} was killed: it used more memory than its limit")
        c.kill_reason = ""

    def _run_init_containers(self, pod: dict) -> bool:
        """Run init containers in order; True once all of them succeeded."""
        for c in self.containers.values():
            if not c.init:
                continue
            if c.succeeded:
                continue
            if c.running:
                return False
            policy = pod["spec"].get("restartPolicy", "Always")
            if c.terminated is not None and policy == "Never":
                return False  # the pod fails
            self._maybe_start(pod, c)
            return False
        return True

    def _drive(self, pod: dict, c: Container) -> None:
        if c.running:
            self._probe(pod, c)
            return
        policy = pod["spec"].get("restartPolicy", "Always")
        if c.terminated is not None:
            code = c.terminated.get("exitCode", 0)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
        self._maybe_start(pod, c)

    def _maybe_start(self, pod: dict, c: Container) -> None:
        now = time.monotonic()
        if now < c.next_start:
            return
        if c.terminated is not None and c.next_start == 0.0 and c.waiting_reason != "CrashLoopBackOff":
            # Just finished: restart at once the first time, then after a doubling back-off.
            if c.backoff:
                c.next_start = now + c.backoff
                c.waiting_reason = "CrashLoopBackOff"
                c.waiting_message = (f"back-off {int(c.backoff)}s restarting failed container={c.name} "
                                     f"pod={self.name_}_{self.ns}({self.uid})")
                self.agent.event(pod, "Warning", "BackOff", "Back-off restarting failed container "
                                 f"{c.name} in pod {self.name_}_{self.ns}({self.uid})")
                c.backoff = min(BACKOFF_MAX, c.backoff * 2)
                return
            c.backoff = BACKOFF_START
        c.next_start = 0.0
        try:
            self._start(pod, c)
        except images.ImageError as exc:
            first = c.waiting_reason not in ("ErrImagePull", "ImagePullBackOff")
            c.image_backoff = IMAGE_BACKOFF_START if first else min(BACKOFF_MAX, c.image_backoff * 2)
            c.waiting_reason = "ErrImagePull" if first else "ImagePullBackOff"
            c.waiting_message = str(exc) if first else f'Back-off pulling image "{c.spec["image"]}": {exc}'
            c.next_start = now + c.image_backoff
            if first:
                self.agent.event(pod, "Warning", "Failed", str(exc))
                self.agent.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            else:
                self.agent.event(pod, "Normal", "BackOff", f'Back-off pulling image "{c.spec["image"]}"')
        except (envmod.EnvError, VolumeError, ValueError) as exc:
            if c.waiting_message != str(exc):
                self.agent.event(pod, "Warning", "Failed", f"Error: {exc}")
            c.waiting_reason = "CreateContainerConfigError"
            c.waiting_message = str(exc)
            c.next_start = now + 2.0

    def _security(self, pod: dict, c: Container) -> dict:
        sec = dict(pod["spec"].get("securityContext") or {})
        sec.update({k: v for k, v in (c.spec.get("securityContext") or {}).items() if v is not None})
        return sec

    def _start(self, pod: dict, c: Container) -> None:
        if self.sandbox is None or self.volumes is None:
            raise RuntimeError("a container starts only in a pod's sandbox with its volumes")
        a = self.agent
        img = images.resolve(c.spec["image"], a.image_map)
        services = a.services_for_env(self.ns)  # env.build keeps only default/kubernetes without links
        env = envmod.build(pod, c.spec, img.env, services, a.lookup(self.ns), a.node_ip, self.sandbox.ip)
        env.setdefault("HOSTNAME", pod["spec"].get("hostname") or self.name_)
        argv = [envmod.expand(x, env) for x in images.argv(img, c.spec.get("command"), c.spec.get("args"))]
        if not argv:
            raise ValueError("no command specified")
        sec = self._security(pod, c)
        uid = int(sec.get("runAsUser", 0))
        if sec.get("runAsNonRoot") and uid == 0:
            raise envmod.EnvError("container has runAsNonRoot and image will run as root")
        gid = int(sec.get("runAsGroup", 0))
        groups = [g for g in [(pod["spec"].get("securityContext") or {}).get("fsGroup")] if g is not None]
        groups += list((pod["spec"].get("securityContext") or {}).get("supplementalGroups") or [])
        mounts = self.volumes.mounts(c.spec)
        targets = {m["target"] for m in mounts}
        for target, source in self.sandbox.files().items():
            if target not in targets:
                mounts.append({"source": str(source), "target": target, "readonly": False})
        for target, source in img.binaries.items():
            mounts.append({"source": source, "target": target, "readonly": True})
        limits = c.spec.get("resources", {}).get("limits") or {}
        requests = c.spec.get("resources", {}).get("requests") or {}
        grp = cgroups.group(a.cluster, self.uid, c.name)
        procs = cgroups.create(
            grp,
            memory_limit=int(envmod.quantity(limits["memory"])) if "memory" in limits else None,
            cpu_limit_millis=int(envmod.quantity(limits["cpu"]) * 1000) if "cpu" in limits else None,
            cpu_request_millis=int(envmod.quantity(requests["cpu"]) * 1000) if "cpu" in requests else None,
        )
        attempt = 0 if c.attempt is None else c.attempt + 1
        if c.attempt is not None:
            c.last_terminated = c.terminated
            c.restart_count = attempt
        c.dir.mkdir(parents=True, exist_ok=True)
        files = c.files(attempt)
        files["mnt"].mkdir(exist_ok=True)
        stop = (c.spec.get("lifecycle") or {}).get("stopSignal") or img.stop_signal
        spec = {
            "argv": argv,
            "stop_signal": stop,
            "env": env,
            "cwd": c.spec.get("workingDir") or img.working_dir or "/",
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "hostname": (pod["spec"].get("hostname") or self.name_)[:63],
            "netns_path": self.sandbox.netns_path,
            "cgroup_procs": procs,
            "scratch": str(files["mnt"]),
            "readonly_root": bool(sec.get("readOnlyRootFilesystem")),
            "no_new_privs": sec.get("allowPrivilegeEscalation") is False,
            "capabilities": security.capabilities(sec),
            "mounts": mounts,
            "mask": a.masks,
            "open_paths": a.open_paths,
            "program_dirs": a.program_dirs,
            "log": str(files["log"]),
            "state": str(files["state.json"]),
            "exit": str(files["exit.json"]),
            "oom_control": str(cgroups.path("memory", grp) / "memory.oom_control"),
            "pids_procs": str(cgroups.path("pids", grp) / "cgroup.procs"),
        }
        files["spec.json"].write_text(json.dumps(spec))
        files["spec.json"].chmod(0o600)
        c.attempt = attempt
        c.terminated = None
        c.started = False
        c.ready = False
        with open(c.dir / "shim.log", "ab") as shim_log:
            subprocess.Popen([sys.executable, "-m", "localkube.node.shim", str(files["spec.json"])],
                             stdin=subprocess.DEVNULL, stdout=shim_log, stderr=shim_log,
                             start_new_session=True, close_fds=True, cwd="/")
        deadline = time.monotonic() + 10
        state = None
        while time.monotonic() < deadline:
            state = _read_json(files["state.json"])
            if state:
                break
            time.sleep(0.02)
        if state is None:
            raise ValueError(f"container {c.name}: the shim did not start (see {c.dir / 'shim.log'})")
        c.running = state
        c.waiting_reason = ""
        c.waiting_message = ""
        if attempt == 0:
            a.event(pod, "Normal", "Pulled", f'Container image "{c.spec["image"]}" already present on machine')
        a.event(pod, "Normal", "Created", f"Created container: {c.name}")
        a.event(pod, "Normal", "Started", f"Started container {c.name}")
        self._arm_probes(c)

    def _arm_probes(self, c: Container, adopted: bool = False) -> None:
        started = probes.now()
        c.probes = {}
        for kind in ("startup", "liveness", "readiness"):
            p = c.spec.get(f"{kind}Probe")
            if p and not c.init:
                c.probes[kind] = probes.ProbeState(kind, p, started)
        if adopted:  # keep serving: assume the last known good until a probe says otherwise
            c.started = True
            c.ready = "readiness" not in c.probes
            return
        c.started = "startup" not in c.probes
        c.ready = "readiness" not in c.probes and c.started

    def _probe(self, pod: dict, c: Container) -> None:
        if self.sandbox is None:
            raise RuntimeError("probes run only in a pod's sandbox")
        now = probes.now()
        order = ["startup"] if not c.started else ["liveness", "readiness"]
        for kind in order:
            st = c.probes.get(kind)
            if st is None or not st.due(now):
                continue
            ok, msg = probes.run_probe(st.probe, c.spec, self.sandbox.ip, self._enter(c))
            changed = st.record(ok, msg, probes.now())
            if not ok and st.failures <= int(st.probe.get("failureThreshold", 3)):
                self.agent.event(pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {msg}")
            if kind == "startup" and changed is True:
                c.started = True
                c.ready = "readiness" not in c.probes
            elif kind == "readiness" and changed is not None:
                c.ready = changed
            elif kind in ("startup", "liveness") and changed is False:
                self.agent.event(pod, "Normal", "Killing",
                                 f"Container {c.name} failed {kind} probe, will be restarted")
                self._kill(c, self._grace(pod, st.probe), reason="")
                return

    def _enter(self, c: Container) -> list[str] | None:
        """The argv prefix that runs a command inside the container's running attempt, as its
        process runs (namespaces, root, user, capabilities, env, cgroups)."""
        if c.running is None or c.attempt is None:
            return None
        return [sys.executable, "-m", "localkube.node.nsexec", str(c.files(c.attempt)["spec.json"]),
                str(c.running["pid"]), "--"]

    def _grace(self, pod: dict, probe: dict | None = None) -> float:
        if probe and probe.get("terminationGracePeriodSeconds") is not None:
            return float(probe["terminationGracePeriodSeconds"])
        return float(pod["spec"].get("terminationGracePeriodSeconds", 30))

    def _kill(self, c: Container, grace: float, reason: str = "") -> None:
        """preStop, then the stop signal (SIGTERM unless the image or `lifecycle.stopSignal` says
        otherwise) to the container's process group, SIGKILL to its cgroup after `grace` seconds."""
        if c.running is None or c.attempt is None:
            return
        c.kill_reason = reason
        pid = c.running["pid"]
        started = time.monotonic()
        self._pre_stop(c, grace)
        grace = max(0.0, grace - (time.monotonic() - started))
        exit_path = c.files(c.attempt)["exit.json"]
        grp = cgroups.group(self.agent.cluster, self.uid, c.name)
        spec = _read_json(c.files(c.attempt)["spec.json"]) or {}
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, getattr(signal, spec.get("stop_signal", "SIGTERM"), signal.SIGTERM))
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not exit_path.exists():
            time.sleep(0.05)
        if not exit_path.exists():
            cgroups.kill_all(grp)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not exit_path.exists():
                time.sleep(0.05)
        self._poll(c)

    def _pre_stop(self, c: Container, grace: float) -> None:
        """The container's preStop hook (sleep, exec or httpGet), within the grace period."""
        hook = (c.spec.get("lifecycle") or {}).get("preStop")
        if not hook or c.running is None:
            return
        try:
            if "sleep" in hook:
                time.sleep(min(grace, float(hook["sleep"].get("seconds", 0))))
            elif "exec" in hook and (enter := self._enter(c)) is not None:
                probes.run_in_container(enter, list(hook["exec"]["command"]), max(grace, 0.1))
            elif "httpGet" in hook and self.sandbox is not None:
                probes.run_probe({"httpGet": hook["httpGet"], "timeoutSeconds": max(grace, 1)}, c.spec,
                                 self.sandbox.ip, None)
        except (subprocess.TimeoutExpired, OSError) as exc:
            self.agent.event(self.pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {exc}")

    # -- termination -----------------------------------------------------------------------

    def terminate(self, pod: dict) -> None:
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        grace = float(grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30))
        running = [c for c in self.containers.values() if c.running]
        if running:
            for c in running:
                self.agent.event(pod, "Normal", "Killing", f"Stopping container {c.name}")
            threads = [threading.Thread(target=self._kill, args=(c, grace)) for c in running]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.teardown()
        if not self.gone:
            try:
                self.agent.api.delete(f"/api/v1/namespaces/{self.ns}/pods/{self.name_}",
                                      {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                       "preconditions": {"uid": self.uid}})
            except ApiError as exc:
                if exc.status not in (404, 409):
                    raise

    def teardown(self) -> None:
        cgroups.remove(cgroups.group(self.agent.cluster, self.uid))
        if self.sandbox is not None:
            sbx.destroy(self.sandbox)
        else:
            sbx.destroy(sbx.Sandbox(self.agent.cluster, self.uid, "", self.dir / "sandbox"))
        self.agent.ipam.release(self.uid)
        linux.unmount_under(str(self.dir))
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- status ----------------------------------------------------------------------------

    def _container_status(self, c: Container) -> dict:
        cid = f"localkube://{self.uid[:8]}-{c.name}-{c.attempt or 0}"
        st: dict = {"name": c.name, "image": c.spec["image"],
                    "imageID": f"localkube://{images.repository(c.spec['image'])}",
                    "ready": bool(c.running and c.ready), "restartCount": c.restart_count,
                    "started": bool(c.running and c.started), "lastState": {}}
        if c.running:
            st["containerID"] = cid
            st["state"] = {"running": {"startedAt": c.running["startedAt"]}}
            prev = c.last_terminated
        elif c.waiting_reason or c.terminated is None:
            st["state"] = {"waiting": {"reason": c.waiting_reason or "ContainerCreating",
                                       **({"message": c.waiting_message} if c.waiting_message else {})}}
            prev = c.terminated or c.last_terminated
        else:
            st["containerID"] = cid
            st["state"] = {"terminated": _terminated(c.terminated, c.kill_reason, cid)}
            prev = c.last_terminated
        if prev:
            st["lastState"] = {"terminated": _terminated(prev, "", f"localkube://{self.uid[:8]}-{c.name}")}
        return st

    def _phase(self, pod: dict) -> str:
        apps = [c for c in self.containers.values() if not c.init]
        inits = [c for c in self.containers.values() if c.init]
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" and any(c.terminated and c.terminated.get("exitCode") != 0 for c in inits):
            return "Failed"
        if not all(c.succeeded for c in inits):
            return "Pending"
        if any(c.running for c in apps):
            return "Running"
        if all(c.terminated is not None for c in apps):
            failed = any(c.terminated.get("exitCode") != 0 for c in apps)  # type: ignore[union-attr]
            if policy == "Never" or (policy == "OnFailure" and not failed):
                return "Failed" if failed else "Succeeded"
            return "Running"
        if any(c.attempt is not None for c in apps):
            return "Running"
        return "Pending"

    def _cond(self, ctype: str, ok: bool, reason: str = "") -> dict:
        status = "True" if ok else "False"
        prev = self.transitions.get(ctype)
        t = prev[1] if prev and prev[0] == status and prev[1] else rfc3339()
        self.transitions[ctype] = (status, t)
        c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": t}
        if reason and not ok:
            c["reason"] = reason
        return c

    def build_status(self, pod: dict) -> dict:
        inits = [c for c in self.containers.values() if c.init]
        apps = [c for c in self.containers.values() if not c.init]
        phase = self._phase(pod)
        initialized = all(c.succeeded for c in inits)
        ctr_ready = bool(apps) and all(c.running and c.ready for c in apps)
        conds = [self._cond("PodReadyToStartContainers", self.sandbox is not None),
                 self._cond("Initialized", initialized, "ContainersNotInitialized"),
                 self._cond("Ready", ctr_ready and phase == "Running", "ContainersNotReady"),
                 self._cond("ContainersReady", ctr_ready, "ContainersNotReady")]
        existing = {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}
        # Conditions owned by others (PodScheduled, readiness gates) are kept as they are.
        conds += [c for t, c in existing.items() if t not in {x["type"] for x in conds}]
        status: dict = {"phase": phase, "hostIP": self.agent.node_ip, "hostIPs": [{"ip": self.agent.node_ip}],
                        "startTime": self.start_time, "conditions": conds,
                        "containerStatuses": [self._container_status(c) for c in apps]}
        if inits:
            status["initContainerStatuses"] = [self._container_status(c) for c in inits]
        if self.sandbox is not None:
            status["podIP"] = self.sandbox.ip
            status["podIPs"] = [{"ip": self.sandbox.ip}]
        if self.pod_error and phase == "Pending":
            status["message"] = self.pod_error
        return status

    def _post_status(self, pod: dict) -> None:
        status = self.build_status(pod)
        if status == self.last_status:
            return
        try:
            self.agent.api.merge_patch(f"/api/v1/namespaces/{self.ns}/pods/{self.name_}/status",
                                       {"status": status})
            self.last_status = copy.deepcopy(status)
        except ApiError as exc:
            if exc.status == 404:
                self.gone = True
            else:
                log.warning("pod %s/%s: status: %s", self.ns, self.name_, exc)


def _ts(value: str | None) -> float:
    if not value:
        return time.time()
    import datetime as dt
    try:
        return dt.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return time.time()


def _reason(exit_: dict, kill_reason: str) -> str:
    if exit_.get("startError"):
        return "StartError"
    if exit_.get("oomKilled"):
        return "OOMKilled"
    if exit_.get("reason"):
        return exit_["reason"]
    if kill_reason:
        return kill_reason
    return "Completed" if exit_.get("exitCode") == 0 else "Error"


def _terminated(exit_: dict, kill_reason: str, cid: str) -> dict:
    t = {"exitCode": int(exit_.get("exitCode", 0)), "reason": _reason(exit_, kill_reason),
         "startedAt": (exit_.get("startedAt") or "")[:19] + "Z" if exit_.get("startedAt") else None,
         "finishedAt": (exit_.get("finishedAt") or "")[:19] + "Z" if exit_.get("finishedAt") else None,
         "containerID": cid}
    if exit_.get("signal"):
        t["signal"] = int(exit_["signal"])
    if exit_.get("startError"):
        t["message"] = exit_["startError"]
    return t
