"""`python -m localkube.node.shim SPEC.json`: starts one container attempt and outlives the agent.

The child joins the container's cgroups and the pod's network namespace, gets its own PID, mount,
IPC and UTS namespaces with a copy-on-write view of the machine's root (an overlay whose upper layer
is a tmpfs), its own /proc, a read-only /sys and a /dev holding only the harmless devices, volumes
bound at their mount paths, the cluster's own files hidden, then chroots, drops to the pod's user,
group and capabilities and execs: it is PID 1 of its namespace, as in a container runtime. The
shim stays as the parent: it writes the container's output as CRI log lines (`TIME stdout|stderr F
LINE`), `state.json` once started and `exit.json` (exit code, signal, OOM kill) at the end, so a
restarted agent reads what happened while it was away.

Imports only the standard library, `linux.py` and `subpath.py`: one shim runs per container.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import signal
import stat
import sys
import time

from . import linux, subpath

MAX_LINE = 16 * 1024
VIRTUAL_FS = {"proc", "sysfs", "cgroup", "cgroup2", "tmpfs", "devtmpfs", "devpts", "mqueue", "debugfs",
              "tracefs", "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs",
              "binfmt_misc", "nsfs", "overlay", "efivarfs", "rpc_pipefs", "ramfs"}


def rfc3339() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _other_mounts(skip: list[str]) -> list[str]:
    """Real filesystems mounted below / (a separate /home or /work): they are not in the overlay's
    lower layer, so they are bound into the container's root read-only."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            mnt = left.split()[4].encode().decode("unicode_escape")
            fstype = right.split()[0]
            if mnt == "/" or fstype in VIRTUAL_FS:
                continue
            if any(mnt == s or mnt.startswith(s.rstrip("/") + "/") for s in skip):
                continue
            if any(mnt.startswith(o.rstrip("/") + "/") for o in out):
                continue
            out.append(mnt)
    return out


def in_root(root: str, path: str, max_links: int = 40) -> str:
    """`path` as seen from inside `root`: symlinks (absolute ones too) resolve within `root`, so
    `/var/run/secrets` in an image where /var/run → /run lands in the root's /run, never the host's."""
    parts = [p for p in path.split("/") if p]
    cur = ""
    links = 0
    while parts:
        p = parts.pop(0)
        if p == ".":
            continue
        if p == "..":
            cur = cur.rsplit("/", 1)[0]
            continue
        cand = f"{cur}/{p}"
        if os.path.islink(root + cand):
            links += 1
            if links > max_links:
                raise OSError(40, f"too many levels of symbolic links in {path}")
            target = os.readlink(root + cand)
            if target.startswith("/"):
                cur = ""
            parts = [x for x in target.split("/") if x] + parts
            continue
        cur = cand
    return root + (cur or "/")


# Of the machine's root a container sees the system (programs, libraries, their configuration) and
# nothing of anyone's: home directories, the checkouts under /work, other programs' temporary files
# and sockets, password hashes and host keys are each covered (an empty tmpfs, or /dev/null).
SHOWN_TOP = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "var", "proc", "sys", "dev"})
SCRATCH_DIRS = ("/tmp", "/var/tmp")  # noqa: S108 - each container gets empty ones of its own
HIDDEN_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/ssh", "/etc/sudoers",
                "/etc/sudoers.d", "/var/tmp", "/var/lib/private", "/var/spool", "/var/mail",  # noqa: S108
                "/var/backups")


def hidden_host_paths() -> list[str]:
    """Everything at the top of the machine's root but the system dirs, and the secrets in those."""
    tops = [f"/{n}" for n in sorted(os.listdir("/")) if n not in SHOWN_TOP and not os.path.islink(f"/{n}")]
    return tops + [p for p in HIDDEN_FILES if os.path.lexists(p)]


def _ensure_target(root: str, target: str, is_file: bool) -> str:
    path = in_root(root, target)
    if is_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)
    return path


def _open_ancestors(root: str, path: str) -> None:
    """Let the container's user walk to `path`: o+x on each directory on the way, inside the
    overlay only (the host's modes are untouched)."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        try:
            target = in_root(root, "/" + "/".join(parts[:i]))
            if os.path.ismount(target):
                return  # a directory bound from the machine: its modes are the machine's, not ours to change
            st = os.stat(target)
            if stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o001:
                os.chmod(target, (st.st_mode & 0o7777) | 0o001)
        except OSError:
            return


# /proc entries a container reads but never writes, and those it does not see at all (as runc's
# defaults): writing /proc/sys or /proc/sysrq-trigger would change the whole machine.
PROC_READONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
PROC_MASKED = ("acpi", "asound", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug",
               "scsi")
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def _mount_proc_sys_dev(root: str) -> None:
    """A /proc of the container's own PID namespace, sysfs read-only, and a /dev of its own: no
    disk, memory or kernel device of the machine is reachable, and /proc/1 is the container."""
    nosuid = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    proc = root + "/proc"
    linux.mount("proc", proc, "proc", nosuid)
    for name in PROC_READONLY:
        p = f"{proc}/{name}"
        if os.path.exists(p):
            linux.mount(p, p, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, p, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | nosuid)
    for name in PROC_MASKED:
        p = f"{proc}/{name}"
        if os.path.isdir(p):
            linux.mount("tmpfs", p, "tmpfs", nosuid | linux.MS_RDONLY, "size=0")
        elif os.path.exists(p):
            linux.mount("/dev/null", p, None, linux.MS_BIND)
    linux.mount("sysfs", root + "/sys", "sysfs", nosuid | linux.MS_RDONLY)
    dev = root + "/dev"
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "mode=0755,size=64k")
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)  # noqa: S103 - null, zero, random…: every user's, as on any machine
    for d in ("pts", "shm", "mqueue"):
        os.mkdir(f"{dev}/{d}")
    linux.mount("devpts", f"{dev}/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620")
    linux.mount("tmpfs", f"{dev}/shm", "tmpfs", nosuid, "mode=1777,size=64m")
    linux.mount("mqueue", f"{dev}/mqueue", "mqueue", nosuid)
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")


def capability_set(spec: dict) -> set[int]:
    names = spec.get("capabilities", linux.DEFAULT_CAPABILITIES)
    return {linux.CAPABILITIES.index(n) for n in names if n in linux.CAPABILITIES}


def become(spec: dict) -> None:
    """Take the container's identity: groups, group, a bounding set limited to its capabilities,
    user (leaving root clears the rest), and no_new_privs when privilege escalation is off."""
    keep = capability_set(spec)
    os.setgroups(spec.get("groups", []))
    os.setgid(spec.get("gid", 0))
    linux.limit_capabilities(keep)
    uid = spec.get("uid", 0)
    os.setuid(uid)
    if uid == 0:
        linux.set_capabilities(keep)
    if spec.get("no_new_privs"):
        linux.no_new_privs()


def setup_and_exec(spec: dict, ctl_w: int) -> None:  # noqa: C901 - one linear setup sequence, step by step
    for p in spec.get("cgroup_procs", []):
        with open(p, "w") as fh:
            fh.write(str(os.getpid()))
    os.setsid()
    os.umask(0o022)  # a container's default, not the node agent's 077
    linux.setns(spec["netns_path"], linux.CLONE_NEWNET)
    linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC)
    linux.sethostname(spec["hostname"])
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    scratch = spec["scratch"]
    linux.mount("tmpfs", scratch, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=1g")
    upper, work, root = (os.path.join(scratch, d) for d in ("upper", "work", "root"))
    for d in (upper, work, root):
        os.mkdir(d)
    linux.mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={upper},workdir={work}")
    masks = [*spec.get("mask", []), *hidden_host_paths()]
    for mnt in _other_mounts(skip=[*masks, scratch]):
        target = _ensure_target(root, mnt, False)
        linux.mount(mnt, target, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    _mount_proc_sys_dev(root)
    for m in masks:
        target = in_root(root, m)
        if os.path.isdir(target):
            opts = "mode=1777,size=512m" if m in SCRATCH_DIRS else "mode=0755,size=64k"
            linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, opts)
        elif os.path.exists(target):
            linux.mount("/dev/null", target, None, linux.MS_BIND)
    # The programs mapped images run (the project's Python and packages) come back, read-only.
    for prog in spec.get("program_dirs", []):
        if any(prog == m or prog.startswith(m.rstrip("/") + "/") for m in masks) and os.path.isdir(prog):
            target = _ensure_target(root, prog, False)
            linux.mount(prog, target, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    for p in spec.get("open_paths", []):
        _open_ancestors(root, p)
    for m in spec.get("mounts", []):
        fd = subpath.open_beneath(m["source"], m["subPath"]) if m.get("subPath") else None
        source = f"/proc/self/fd/{fd}" if fd is not None else m["source"]
        target = _ensure_target(root, m["target"], os.path.isfile(source))
        linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
        if fd is not None:
            os.close(fd)
        if m.get("readonly"):
            linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    # The programs themselves (the project's Python and packages) must stay visible even where a
    # volume is mounted over their location (a repo under /tmp and an emptyDir at /tmp): bind them
    # back, read-only, inside that volume.
    targets = [m["target"].rstrip("/") or "/" for m in spec.get("mounts", [])]
    for prog in spec.get("program_dirs", []):
        if any(prog == t or prog.startswith(t.rstrip("/") + "/") for t in targets) and os.path.isdir(prog):
            try:
                target = _ensure_target(root, prog, False)
            except OSError:
                continue  # a read-only volume over it: nothing to do but let the exec fail clearly
            linux.mount(prog, target, None, linux.MS_BIND | linux.MS_REC)
            linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    if spec.get("readonly_root"):
        linux.mount(None, root, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    os.chroot(root)
    os.chdir(spec.get("cwd") or "/")
    for fd in (0, 1, 2):  # as runc does: the container's user may reopen its stdio (/dev/stdout)
        if stat.S_ISFIFO(os.fstat(fd).st_mode):  # our log pipes; never a device of the host
            os.fchown(fd, spec.get("uid", 0), spec.get("gid", 0))
    become(spec)
    env = spec["env"]
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606 - the shim becomes the container's program
    except OSError as exc:
        os.write(ctl_w, f"exec {argv[0]!r}: {exc.strerror}".encode())
        os._exit(128)


def main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    oom_before = _oom_kills(spec)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    linux.unshare(linux.CLONE_NEWPID)  # the child below is PID 1 of a namespace of its own
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.close(ctl_r)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            setup_and_exec(spec, ctl_w)
        except BaseException as exc:  # noqa: BLE001 - anything before exec is a start error
            try:
                os.write(ctl_w, f"container setup: {exc}".encode())
            finally:
                os._exit(128)
    os.close(out_w)
    os.close(err_w)
    os.close(ctl_w)
    started = rfc3339()
    _write_json(spec["state"], {"pid": pid, "shimPid": os.getpid(), "startedAt": started})
    start_error = b""
    while True:
        chunk = os.read(ctl_r, 4096)
        if not chunk:
            break
        start_error += chunk
    os.close(ctl_r)
    status = _pump_logs(spec, pid, out_r, err_r)
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else 0
    result = {"exitCode": 128 + sig if sig else code, "signal": sig, "startedAt": started,
              "finishedAt": rfc3339(), "oomKilled": sig == signal.SIGKILL and _oom_kills(spec) > oom_before}
    if start_error:
        result["startError"] = start_error.decode(errors="replace")
    _write_json(spec["exit"], result)
    return 0


def _oom_kills(spec: dict) -> int:
    try:
        with open(spec["oom_control"]) as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, KeyError):
        pass
    return 0


def _pump_logs(spec: dict, pid: int, out_r: int, err_r: int) -> int:
    """Copy the container's output into its log until it exits; returns the wait status."""
    streams = {out_r: "stdout", err_r: "stderr"}
    partial = {out_r: b"", err_r: b""}
    status = None
    exited_at = 0.0
    with open(spec["log"], "ab", buffering=0) as log:
        def emit(fd: int, data: bytes, final: bool) -> None:
            buf = partial[fd] + data
            lines = buf.split(b"\n")
            partial[fd] = b"" if final else lines.pop()
            chunks = []
            for ln in lines:
                if final and not ln:
                    continue
                rest = ln
                while len(rest) > MAX_LINE:
                    chunks.append(f"{rfc3339()} {streams[fd]} P ".encode() + rest[:MAX_LINE] + b"\n")
                    rest = rest[MAX_LINE:]
                chunks.append(f"{rfc3339()} {streams[fd]} F ".encode() + rest + b"\n")
            if chunks:
                log.write(b"".join(chunks))

        open_fds = [out_r, err_r]
        while open_fds:
            ready, _, _ = select.select(open_fds, [], [], 0.5)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    emit(fd, b"", True)
                    open_fds.remove(fd)
                    os.close(fd)
                else:
                    emit(fd, data, False)
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status, exited_at = st, time.monotonic()
                    _kill_rest(spec)
            elif time.monotonic() - exited_at > 2:
                for fd in open_fds:  # a leftover process still holds the pipe: stop reading
                    emit(fd, b"", True)
                    os.close(fd)
                break
    if status is None:
        _, status = os.waitpid(pid, 0)
    return status


def _kill_rest(spec: dict) -> None:
    """The container's main process is gone: so is the container, as when a PID namespace's init dies."""
    path = spec.get("pids_procs")
    if not path:
        return
    try:
        with open(path) as fh:
            pids = [int(p) for p in fh.read().split()]
    except OSError:
        return
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
