"""A container's environment, as the kubelet builds it: the image's env, Service link variables,
`envFrom`, then `env` (values with `$(VAR)` expansion and `valueFrom`), and `$(VAR)` in command/args."""
from __future__ import annotations

import base64
import re
from collections.abc import Callable

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(ValueError):
    """A reference that cannot be resolved (CreateContainerConfigError on a kubelet)."""


def expand(text: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))
    return _VAR.sub(one, text)


def service_links(services: list[dict]) -> dict[str, str]:
    """Docker-link style variables for each Service with a ClusterIP, as the kubelet sets them."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec", {})
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        ports = spec.get("ports") or []
        out[f"{name}_SERVICE_HOST"] = ip
        if not ports:
            continue
        out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        proto = first.get("protocol", "TCP")
        out[f"{name}_PORT"] = f"{proto.lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            prefix = f"{name}_PORT_{p['port']}_{proto.upper()}"
            out[prefix] = f"{proto.lower()}://{ip}:{p['port']}"
            out[f"{prefix}_PROTO"] = proto.lower()
            out[f"{prefix}_PORT"] = str(p["port"])
            out[f"{prefix}_ADDR"] = ip
    return out


def field_ref(pod: dict, path: str, host_ip: str, pod_ip: str = "") -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
              "spec.nodeName": spec.get("nodeName", ""), "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.hostIP": host_ip, "status.podIP": pod_ip or status.get("podIP", ""),
              "status.podIPs": pod_ip or status.get("podIP", ""), "status.hostIPs": host_ip}
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise EnvError(f"unsupported fieldRef {path!r}")


def quantity(value: str) -> float:
    """A Kubernetes quantity as a number (cores for CPU, bytes for memory)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
             "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
    s = str(value).strip()
    for suffix in sorted(units, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * units[suffix]
    return float(s)


def resource_ref(container: dict, ref: dict) -> str:
    res = ref["resource"]
    kind, _, name = res.partition(".")
    value = (container.get("resources", {}).get(kind) or {}).get(name)
    divisor = quantity(ref.get("divisor", "1"))
    if value is None:
        return "0" if kind == "requests" else ""
    q = quantity(value) / divisor
    return str(int(q) if q == int(q) else int(q) + 1)


Lookup = Callable[[str, str], dict | None]  # (kind "configmaps"|"secrets", name) → object or None


def build(pod: dict, container: dict, image_env: dict[str, str], services: list[dict], lookup: Lookup,
          host_ip: str, pod_ip: str = "") -> dict[str, str]:
    env: dict[str, str] = dict(image_env)
    # As the kubelet: the API server's own Service (default/kubernetes) is always there, so
    # in-cluster clients find it; the other Services only when links are enabled.
    links = pod["spec"].get("enableServiceLinks", True)
    env.update(service_links([s for s in services if links or (
        s["metadata"]["name"] == "kubernetes" and s["metadata"].get("namespace") == "default")]))
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            obj = lookup(kind, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError(f'{kind[:-1]} "{ref["name"]}" not found')
            for k, v in (obj.get("data") or {}).items():
                env[prefix + k] = base64.b64decode(v).decode() if kind == "secrets" else v
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(item.get("value", ""), env)
            continue
        vf = item["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_ref(pod, vf["fieldRef"]["fieldPath"], host_ip, pod_ip)
        elif "resourceFieldRef" in vf:
            env[name] = resource_ref(container, vf["resourceFieldRef"])
        else:
            kind, key = ("configmaps", "configMapKeyRef") if "configMapKeyRef" in vf else ("secrets", "secretKeyRef")
            ref = vf[key]
            obj = lookup(kind, ref["name"])
            data = (obj or {}).get("data") or {}
            if obj is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                what = f'{kind[:-1]} "{ref["name"]}"' + ("" if obj is None else f' key "{ref["key"]}"')
                raise EnvError(f"couldn't find {what}")
            value = data[ref["key"]]
            env[name] = base64.b64decode(value).decode() if kind == "secrets" else value
    return env
