"""A pod's volumes on the node: each one a directory under the pod's dir, bound into containers
at their mountPaths by the shim.

ConfigMap, Secret, downwardAPI and projected volumes are written as the kubelet's atomic writer
does (files are links through a `..data` symlink swapped in one rename), so a changed ConfigMap
reaches running containers; the projected service-account token comes from the TokenRequest API and
is renewed at 80% of its life; Secret and projected volumes are each a tmpfs of their own. emptyDir
is a fresh directory, a PVC is its PV's directory, hostPath (where Pod Security allows it) is the
path itself."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import env as envmod
from . import linux, subpath
from .kubeapi import KubeApi


class VolumeError(RuntimeError):
    """A volume that cannot be set up yet (FailedMount on a kubelet); the worker retries."""


Files = dict[str, tuple[bytes, int]]  # relative path → (content, mode)


def write_atomic(target: Path, files: Files, gid: int | None = None) -> bool:
    """Make `target` hold exactly `files`; returns True if anything changed."""
    digest = hashlib.sha256(repr(sorted((k, v[0], v[1]) for k, v in files.items())).encode()).hexdigest()[:16]
    data_link = target / "..data"
    current = os.readlink(data_link) if data_link.is_symlink() else None
    new_dir_name = f"..{digest}"
    if current == new_dir_name:
        return False
    target.mkdir(parents=True, exist_ok=True)
    new_dir = target / new_dir_name
    if new_dir.exists():
        shutil.rmtree(new_dir)
    for rel, (content, mode) in files.items():
        p = new_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        p.chmod(mode)
        if gid is not None:
            os.chown(p, 0, gid)
    for d in [new_dir, *(p for p in new_dir.rglob("*") if p.is_dir())]:
        d.chmod(0o755)  # made under the agent's umask 077; the container's user reads through them
    tmp_link = target / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(new_dir_name)
    tmp_link.replace(data_link)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"..data/{top}")
    for child in target.iterdir():
        if child.name.startswith("..") and child.name not in ("..data", new_dir_name):
            shutil.rmtree(child, ignore_errors=True)
        elif not child.name.startswith("..") and child.name not in tops:
            child.unlink()
    return True


def _memory_backed(path: Path) -> None:
    """Secrets and tokens live in memory only, as on a kubelet: a tmpfs per volume, never the disk."""
    path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(path):
        linux.mount("tmpfs", str(path), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                    "mode=0755,size=16m")


def _items(data: dict[str, bytes], items: list[dict] | None, default_mode: int, optional: bool,
           what: str) -> Files:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: Files = {}
    for it in items:
        if it["key"] not in data:
            if optional:
                continue
            raise VolumeError(f'{what}: key "{it["key"]}" not found')
        out[it["path"]] = (data[it["key"]], it.get("mode", default_mode))
    return out


@dataclass
class VolumeManager:
    api: KubeApi
    pod: dict
    dir: Path
    host_ip: str
    ca_cert: bytes
    pod_ip: str = ""
    tokens: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # path → token, issued, ttl
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def fs_group(self) -> int | None:
        return (self.pod["spec"].get("securityContext") or {}).get("fsGroup")

    def _get(self, kind: str, name: str) -> dict | None:
        return self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")

    def _data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        obj = self._get(kind, name)
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'{kind[:-1]} "{name}" not found')
        if kind == "secrets":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    def _token(self, key: str, sa: str, audience: str | None, seconds: int) -> bytes:
        cached = self.tokens.get(key)
        if cached and time.time() < cached[1] + 0.8 * cached[2]:
            return cached[0].encode()
        meta = self.pod["metadata"]
        spec: dict = {"expirationSeconds": seconds,
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        resp = self.api.create(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        token = resp["status"]["token"]
        ttl = float(resp["spec"].get("expirationSeconds") or seconds)
        self.tokens[key] = (token, time.time(), ttl)
        return token.encode()

    def _downward(self, items: list[dict], default_mode: int) -> Files:
        out: Files = {}
        for it in items or []:
            if "fieldRef" in it:
                value = envmod.field_ref(self.pod, it["fieldRef"]["fieldPath"], self.host_ip, self.pod_ip)
            else:
                ref = it["resourceFieldRef"]
                ctr = next(c for c in self.pod["spec"]["containers"] if c["name"] == ref.get("containerName"))
                value = envmod.resource_ref(ctr, ref)
            out[it["path"]] = (value.encode(), it.get("mode", default_mode))
        return out

    def _projected(self, vol: dict) -> Files:
        spec = vol["projected"]
        mode = spec.get("defaultMode", 0o644)
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        out: Files = {}
        for src in spec.get("sources") or []:
            if "serviceAccountToken" in src:
                t = src["serviceAccountToken"]
                out[t["path"]] = (self._token(f"{vol['name']}/{t['path']}", sa, t.get("audience"),
                                              int(t.get("expirationSeconds", 3607))), mode)
            elif "configMap" in src or "secret" in src:
                kind, key = ("configmaps", "configMap") if "configMap" in src else ("secrets", "secret")
                ref = src[key]
                data = self._data(kind, ref["name"], ref.get("optional", False))
                out.update(_items(data or {}, ref.get("items"), mode, ref.get("optional", False),
                                  f'{kind[:-1]} "{ref["name"]}"'))
            elif "downwardAPI" in src:
                out.update(self._downward(src["downwardAPI"].get("items"), mode))
            elif "clusterTrustBundle" in src or "podCertificate" in src:
                raise VolumeError("clusterTrustBundle and podCertificate projections are not supported")
        return out

    def _pvc_path(self, claim: str) -> Path:
        pvc = self._get("persistentvolumeclaims", claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = pvc.get("spec", {}).get("volumeName")
        if not pv_name or pvc.get("status", {}).get("phase") != "Bound":
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound yet')
        pv = self.api.get(f"/api/v1/persistentvolumes/{pv_name}")
        src = pv["spec"].get("hostPath") or pv["spec"].get("local")
        if not src:
            raise VolumeError(f'persistentvolume "{pv_name}" is neither hostPath nor local')
        return Path(src["path"])

    def _own(self, path: Path, mode: int = 0o2775) -> None:
        gid = self.fs_group
        if gid is not None:
            os.chown(path, os.stat(path).st_uid, gid)
            path.chmod(mode)

    def sync(self) -> bool:
        """Set up or refresh every volume; returns True if any content changed."""
        changed = False
        for vol in self.pod["spec"].get("volumes") or []:
            name = vol["name"]
            own = self.dir / name
            if "emptyDir" in vol:
                if not own.exists():
                    own.mkdir(parents=True)
                    own.chmod(0o777)
                self.paths[name] = own
            elif "hostPath" in vol:
                hp = Path(vol["hostPath"]["path"])
                if vol["hostPath"].get("type") == "DirectoryOrCreate" and not hp.exists():
                    hp.mkdir(parents=True)
                    hp.chmod(0o755)  # as a kubelet makes it
                elif not hp.exists():
                    raise VolumeError(f"hostPath {hp} does not exist")
                self.paths[name] = hp
            elif "persistentVolumeClaim" in vol:
                p = self._pvc_path(vol["persistentVolumeClaim"]["claimName"])
                p.mkdir(parents=True, exist_ok=True)
                self._own(p)
                self.paths[name] = p
            else:
                if "configMap" in vol or "secret" in vol:
                    kind, key = ("configmaps", "configMap") if "configMap" in vol else ("secrets", "secret")
                    ref = vol[key]
                    obj_name = ref.get("name") or ref.get("secretName")
                    data = self._data(kind, obj_name, ref.get("optional", False))
                    files = _items(data or {}, ref.get("items"), ref.get("defaultMode", 0o644),
                                   ref.get("optional", False), f'{kind[:-1]} "{obj_name}"')
                elif "projected" in vol:
                    files = self._projected(vol)
                elif "downwardAPI" in vol:
                    files = self._downward(
                        vol["downwardAPI"].get("items"), vol["downwardAPI"].get("defaultMode", 0o644)
                    )
                else:
                    raise VolumeError(f'volume "{name}": type {sorted(set(vol) - {"name"})} is not supported here')
                if "secret" in vol or "projected" in vol:
                    _memory_backed(own)
                changed |= write_atomic(own, files, self.fs_group)
                own.chmod(0o755)
                self.paths[name] = own
        return changed

    def mounts(self, container: dict) -> list[dict]:
        out = []
        for vm in container.get("volumeMounts") or []:
            src = self.paths.get(vm["name"])
            if src is None:
                raise VolumeError(f'volumeMount "{vm["name"]}" names no volume of the pod')
            mount = {"source": str(src), "target": vm["mountPath"], "readonly": bool(vm.get("readOnly"))}
            if vm.get("subPath"):
                try:  # checked (and made) here for a clear error; the shim opens it again the same way
                    os.close(subpath.open_beneath(str(src), vm["subPath"], create=True))
                except OSError as exc:
                    raise VolumeError(f'volumeMount "{vm["name"]}": {exc}') from exc
                mount["subPath"] = vm["subPath"]
            out.append(mount)
        return out

