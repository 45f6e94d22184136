"""What a pod may do on this node: its containers' capability sets, and the node's own check of
the Pod Security level of its namespace.

The API server's PodSecurity admission is the first line (namespaces default to `baseline`); the
agent refuses host access itself too, so a pod admitted another way (a label changed after the
pod was created, an admission plugin turned off) still does not get the machine.
"""
from __future__ import annotations

from .linux import CAPABILITIES, DEFAULT_CAPABILITIES

LEVEL_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"


def _cap_names(values: list[str] | None) -> set[str]:
    return {str(v).upper().removeprefix("CAP_") for v in values or []}


def capabilities(sec: dict) -> list[str]:
    """The capabilities a container keeps: the runtime's defaults, minus `drop`, plus `add`
    (`ALL` in either means every one); a privileged container keeps them all."""
    if sec.get("privileged"):
        return list(CAPABILITIES)
    caps = sec.get("capabilities") or {}
    drop, add = _cap_names(caps.get("drop")), _cap_names(caps.get("add"))
    keep = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
    keep |= set(CAPABILITIES) if "ALL" in add else add & set(CAPABILITIES)
    return sorted(keep, key=CAPABILITIES.index)


def level(namespace: dict | None) -> str:
    value = ((namespace or {}).get("metadata", {}).get("labels") or {}).get(LEVEL_LABEL, DEFAULT_LEVEL)
    return value if value in LEVELS else DEFAULT_LEVEL  # an unknown value never loosens


def violations(pod: dict, ns_level: str) -> list[str]:
    """Host access the level forbids (baseline's host checks, which restricted includes)."""
    if ns_level == "privileged":
        return []
    spec = pod.get("spec") or {}
    out = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    out += [f'hostPath volume "{v.get("name")}"' for v in spec.get("volumes") or [] if "hostPath" in v]
    allowed = set(DEFAULT_CAPABILITIES)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            sec = c.get("securityContext") or {}
            if sec.get("privileged"):
                out.append(f'privileged container "{c.get("name")}"')
            extra = _cap_names((sec.get("capabilities") or {}).get("add")) - allowed
            if extra:
                out.append(f'container "{c.get("name")}" adds capabilities {sorted(extra)}')
            if any(p.get("hostPort") for p in c.get("ports") or []):
                out.append(f'container "{c.get("name")}" uses a hostPort')
    return out
