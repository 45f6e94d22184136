"""`python -m localkube.node.nsexec SPEC.json PID -- CMD…`: run CMD inside a running container, as
its process is: its cgroups, network, UTS, IPC, PID and mount namespaces and root, its user, groups,
capabilities, no_new_privs and environment (exec probes and exec hooks, like `kubectl exec`).

Everything is imported before entering the container: after the chroot nothing is loaded from a
filesystem the container can write. Exits with CMD's exit code (126: could not enter; 127: no CMD).
"""
from __future__ import annotations

import json
import os
import sys

from . import linux, shim

NAMESPACES = (("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS), ("net", linux.CLONE_NEWNET),
              ("pid", linux.CLONE_NEWPID), ("mnt", linux.CLONE_NEWNS))


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        os.write(2, b"usage: nsexec SPEC.json PID -- CMD...\n")
        return 126
    with open(argv[0]) as fh:
        spec = json.load(fh)
    pid, cmd = int(argv[1]), argv[3:]
    try:
        fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in NAMESPACES]
        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for p in spec.get("cgroup_procs", []):
            with open(p, "w") as fh:
                fh.write(str(os.getpid()))
        for fd, flag in fds:
            linux.setns_fd(fd, flag)
        os.fchdir(root)
        os.chroot(".")
    except OSError as exc:
        os.write(2, f"entering the container: {exc}\n".encode())
        return 126
    child = os.fork()  # the child is in the container's PID namespace
    if child == 0:
        os.umask(0o022)
        try:
            try:
                os.chdir(spec.get("cwd") or "/")
            except OSError:
                os.chdir("/")
            shim.become(spec)
            os.execvpe(cmd[0], cmd, spec["env"])  # noqa: S606 - the command a probe or hook names
        except OSError as exc:
            os.write(2, f"exec {cmd[0]!r}: {exc.strerror}\n".encode())
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
        os._exit(126)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
