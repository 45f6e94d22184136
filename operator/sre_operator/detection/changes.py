"""What changed since the application was last seen healthy: the evidence that generalises.

A fault that a person or a bad deploy makes is a difference between an object now and its last
healthy copy (kept in the known-good record while the shop was healthy): a Deployment's pod
template (image, command, arguments, environment, probes, resources, scheduling) or replica count,
a Service's selector or ports, a ConfigMap's data, or an object that no longer exists. `diff`
compares the two, field by field, and names each difference in words a person (or a model) reads.
It never looks at who made the change or at any label a fault injector could write.

Pure: the objects and their healthy copies come in as dicts."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Container fields whose change alters what runs (ports and mounts included: a wrong port is a fault).
CONTAINER_FIELDS = ("image", "command", "args", "env", "envFrom", "ports", "readinessProbe", "livenessProbe",
                    "startupProbe", "resources", "volumeMounts", "workingDir", "securityContext")
# Pod fields that decide where and how the pods run.
POD_FIELDS = ("nodeSelector", "affinity", "tolerations", "volumes", "serviceAccountName", "securityContext",
              "initContainers", "priorityClassName", "runtimeClassName", "hostNetwork")
MAX_TEXT = 300


@dataclass(frozen=True)
class Change:
    """One difference between an object now and its last healthy copy."""
    kind: str
    name: str
    field: str  # e.g. `spec.template.spec.containers[payment].env`, `data[nginx.conf]`, `(object)`
    before: str  # the healthy value, shortened; "" when it did not exist
    after: str  # the value now, shortened; "" when it no longer exists

    @property
    def missing(self) -> bool:
        """The object itself is gone."""
        return self.field == "(object)" and not self.after

    def describe(self) -> str:
        if self.missing:
            return f"{self.kind}/{self.name} no longer exists (it did when last healthy)"
        return f"{self.kind}/{self.name} {self.field}: {self.before or '(none)'} → {self.after or '(none)'}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else _compact(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _env_key(env: Any) -> Any:
    """Env lists compare as sets of entries: the order a person re-applies them in is no change."""
    if isinstance(env, list):
        return sorted(_compact(e) for e in env)
    return env


def _containers(pod_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(c.get("name", i)): c for i, c in enumerate(pod_spec.get("containers") or [])}


def _deployment(name: str, now: dict[str, Any], good: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    spec_now, spec_good = now.get("spec") or {}, good.get("spec") or {}
    if int(spec_now.get("replicas", 1)) != int(spec_good.get("replicas", 1)):
        out.append(Change("Deployment", name, "spec.replicas", str(spec_good.get("replicas", 1)),
                          str(spec_now.get("replicas", 1))))
    pod_now = (spec_now.get("template") or {}).get("spec") or {}
    pod_good = (spec_good.get("template") or {}).get("spec") or {}
    c_now, c_good = _containers(pod_now), _containers(pod_good)
    for cname in sorted(set(c_now) | set(c_good)):
        base = f"spec.template.spec.containers[{cname}]"
        if cname not in c_now or cname not in c_good:
            out.append(Change("Deployment", name, base, "present" if cname in c_good else "",
                              "present" if cname in c_now else ""))
            continue
        for fname in CONTAINER_FIELDS:
            a, b = c_now[cname].get(fname), c_good[cname].get(fname)
            if fname == "env":
                a, b = _env_key(a), _env_key(b)
            if (a or None) != (b or None):
                out.append(Change("Deployment", name, f"{base}.{fname}", _text(c_good[cname].get(fname)),
                                  _text(c_now[cname].get(fname))))
    for fname in POD_FIELDS:
        a, b = pod_now.get(fname), pod_good.get(fname)
        if (a or None) != (b or None):
            out.append(Change("Deployment", name, f"spec.template.spec.{fname}", _text(b), _text(a)))
    return out


def _service(name: str, now: dict[str, Any], good: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    spec_now, spec_good = now.get("spec") or {}, good.get("spec") or {}
    if (spec_now.get("selector") or {}) != (spec_good.get("selector") or {}):
        out.append(Change("Service", name, "spec.selector", _text(spec_good.get("selector")),
                          _text(spec_now.get("selector"))))

    def ports(spec: dict[str, Any]) -> list[tuple[str, Any, str]]:
        return sorted((str(p.get("name", "")), p.get("port"), str(p.get("targetPort", p.get("port"))))
                      for p in spec.get("ports") or [])
    if ports(spec_now) != ports(spec_good):
        out.append(Change("Service", name, "spec.ports", _text(ports(spec_good)), _text(ports(spec_now))))
    return out


def _config_map(name: str, now: dict[str, Any], good: dict[str, Any]) -> list[Change]:
    data_now, data_good = now.get("data") or {}, good.get("data") or {}
    return [Change("ConfigMap", name, f"data[{key}]", _text(data_good.get(key)), _text(data_now.get(key)))
            for key in sorted(set(data_now) | set(data_good)) if data_now.get(key) != data_good.get(key)]


DIFFS = {"Deployment": _deployment, "Service": _service, "ConfigMap": _config_map}


def template_changes(name: str, now: dict[str, Any], good: dict[str, Any]) -> list[Change]:
    """How a pod template (`spec.template` of a Deployment or a ReplicaSet) differs from a healthy
    one: the fields that change what runs, never labels, annotations or replica counts."""
    return [c for c in _deployment(name, {"spec": {"template": now}}, {"spec": {"template": good}})
            if c.field != "spec.replicas"]


def diff(kind: str, name: str, now: dict[str, Any] | None, good: dict[str, Any] | None) -> list[Change]:
    """How `now` differs from its last healthy copy `good` (None: absent). No healthy copy: nothing
    to compare with, so no change is claimed."""
    if good is None:
        return []
    if now is None:
        return [Change(kind, name, "(object)", "present", "")]
    compare = DIFFS.get(kind)
    return compare(name, now, good) if compare else []
