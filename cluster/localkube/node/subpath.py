"""A volumeMount's `subPath`, opened inside its volume and nowhere else.

A volume's content is the container's to plant: a symbolic link in it (`escape -> /`) named by a
later subPath must not bind the machine's root into a container (CVE-2017-1002101). The path is
resolved, refused if it leads out of the volume, then opened one component at a time without
following any link, so a link swapped in after the check fails instead of being followed; binding
the descriptor (via /proc/self/fd) leaves no window between the check and the mount.

Standard library only: the shim imports it.
"""
from __future__ import annotations

import os
import stat


class SubPathError(OSError):
    pass


def _check_opened(sub: str, mode: int, last: bool) -> None:
    if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)):
        raise SubPathError(f'subPath "{sub}" changed while it was opened')


def open_beneath(base: str, sub: str, create: bool = False) -> int:
    """An O_PATH descriptor of `base/sub`; missing directories are made when `create`."""
    parts = [p for p in sub.split("/") if p and p != "."]
    if sub.startswith("/") or ".." in parts:
        raise SubPathError(f'subPath "{sub}" must be a relative path without ".."')
    root = os.path.realpath(base)
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and not real.startswith(root + "/"):
        raise SubPathError(f'subPath "{sub}" leads out of its volume (through a symbolic link)')
    rel = [p for p in real[len(root):].split("/") if p]
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(rel):
            try:
                nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)  # never follows a link planted meanwhile (EEXIST)
                nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
            mode = os.fstat(fd).st_mode
            _check_opened(sub, mode, last=i == len(rel) - 1)
    except BaseException:
        os.close(fd)
        raise
    return fd
