"""One writer at a time: the exclusive lock a run holds on its results folder.

``acquire_lock`` holds an exclusive ``flock`` on ``<folder>/.lock`` for the whole run and writes who holds
it (pid, host, start time) into the file. The kernel drops the lock when its holder dies, so a lock left by
a killed run is taken over (and the run says so); a live holder makes a second run fail at once, or wait.
Where the filesystem has no locks, the pid recorded in the file (checked against the process's start time,
so a reused pid does not count) is what guards the folder. ``lock_holder`` tells readers who is writing.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from losslab.experiments.store.layout import LOCK, StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file's pid check alone guards the folder
    fcntl = None


class LockedError(StoreError):
    """Another run is writing into the results folder."""


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a live holder from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists and belongs to someone else
        return True
    return True


def _holder_info() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "boot_id": _boot_id(),
        "process_start": _process_start(os.getpid()),
    }


def describe_holder(info: dict | None) -> str:
    if not info:
        return "another losslab run, starting up"
    if info.get("unreadable") or not isinstance(info.get("pid"), int) or not isinstance(info.get("host"), str):
        # Not what a losslab run writes: another program, or a damaged lock file, holds the lock.
        return f"pid and host unknown: its {LOCK} file is damaged or not losslab's"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started') or 'at an unknown time'}"


def _holder_state(info: dict) -> str:
    """'gone' if the process that wrote ``info`` no longer runs on this host; 'alive' if it does;
    'unknown' if it ran on another host."""
    if info.get("host") != socket.gethostname():
        return "unknown"
    boot = _boot_id()
    if boot is not None and info.get("boot_id") not in (None, boot):
        return "gone"  # the machine has restarted since
    pid = info.get("pid")
    if pid == os.getpid() or not _pid_alive(pid):
        return "gone"
    recorded, current = info.get("process_start"), _process_start(pid)
    if recorded is not None and current is not None and recorded != current:
        return "gone"  # the pid now belongs to another process
    return "alive"


def _read_info(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 1 << 16)
    try:
        info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"unreadable": True}
    return info if isinstance(info, dict) else {"unreadable": True}


def _flock(fd: int, shared: bool = False) -> bool | None:
    """Try to lock ``fd`` without waiting: True if locked, False if another holds it, None if this
    filesystem has no locks (then the pid in the lock file is all that guards the folder)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def lock_holder(folder) -> dict | None:
    """Who is writing into ``folder`` now (the lock file's record), or None if nobody is. Creates nothing."""
    path = Path(folder) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = _read_info(fd)
        locked = _flock(fd, shared=True)
        if locked is False:
            return info
        if locked is None and info and not info.get("unreadable") and _holder_state(info) != "gone":
            return info
        return None
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a results folder, held from ``acquire_lock`` until ``release``."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path):
                os.unlink(self.path)  # while still locked: a waiter on this file sees it vanish and retries
        except OSError:
            pass
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def acquire_lock(folder, *, wait: bool = False, log: Callable[[str], None] = print, poll: float = 0.2) -> RunLock:
    """Lock ``folder`` (which must exist) for one run.

    Held by a live run: raise LockedError naming it (pid, host, start time), or with ``wait`` poll
    until it is free. Left by a run that died (the kernel dropped its flock, and its pid no longer
    runs on this host): take it over, saying so through ``log``.
    """
    folder = Path(folder)
    path = folder / LOCK
    announced = False
    brief_retries = 20
    while True:
        try:
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW: never lock (or write through) a link planted there
                raise StoreError(
                    f"{path} is a link, and a run writes only inside {folder}; delete the link (a run's lock file "
                    "is always a plain file) or use another --out"
                ) from None
            raise StoreError(
                f"cannot write into results folder {folder} ({exc.strerror}); choose a writable --out"
            ) from None
        busy = None
        try:
            locked = _flock(fd)
            if locked is False:
                busy = _read_info(fd)
            elif not _same_file(fd, path):
                pass  # its holder finished and removed it between our open and our lock: try again
            else:
                previous = _read_info(fd)
                state = _holder_state(previous) if previous and not previous.get("unreadable") else "gone"
                if not previous or state == "gone":
                    if previous.get("unreadable"):
                        log(f"taking over the lock {path}, which nobody holds and whose record is damaged")
                    elif previous:
                        log(
                            f"taking over the stale lock {path} of {describe_holder(previous)}, which is no longer running"
                        )
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, json.dumps(_holder_info()).encode())
                    os.fsync(fd)
                    lock, fd = RunLock(path, fd), -1
                    return lock
                busy = previous  # a live pid (a filesystem without locks), or a holder on another host
        finally:
            if fd >= 0:
                os.close(fd)
        if busy is None:
            continue
        elsewhere = bool(busy) and busy.get("host") != socket.gethostname()
        hint = f"; if that run is no longer running, delete {path}" if elsewhere else ""
        stale = not busy or busy.get("unreadable") or _holder_state(busy) == "gone"
        if not wait and stale and brief_retries > 0:
            # Held, but not by a live run: a reader (lock_holder) checking a stale lock takes a shared lock
            # for an instant. Try again for up to a second before calling the folder busy.
            brief_retries -= 1
            time.sleep(0.05)
            continue
        if not wait:
            raise LockedError(
                f"{folder} is in use by another losslab run ({describe_holder(busy)}); "
                f"wait for it with --wait, or use another --out{hint}"
            )
        if not announced:
            log(f"waiting for the run writing into {folder} ({describe_holder(busy)}) to finish{hint}")
            announced = True
        time.sleep(poll)
