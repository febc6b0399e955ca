"""How a command ends when it does not succeed: the one line on stderr, and the exit code.

``losslab.cli.main`` reports every failure through these: bad input (exit 2), a full disk (exit 2: the line names
the file and says to free space, not to check permissions), Ctrl-C (130) and SIGTERM (143: ``timeout``, ``kill``
and schedulers send it; handled as Ctrl-C is, so a run releases its lock and leaves its manifest consistent). What
an interrupted command says it kept depends on the command: a run keeps its finished cells, ``check-loss`` wrote
nothing.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import signal
import threading

from losslab.errors import Terminated


def one_line(text: str) -> str:
    """Messages go to stderr as exactly one line, whatever a library put in them."""
    return re.sub(r"\s*\n\s*", "; ", str(text).strip()) or "unknown error"


#: errno values that mean the disk (or a quota, or a file-size limit) is full: the fix is space, not permissions.
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def describe_os_error(exc: OSError, args=None) -> str:
    """An error of the machine (a read-only disk, a full disk, a missing permission) in one line, naming the file."""
    if exc.errno is not None and exc.strerror:
        target = f" {exc.filename}" if exc.filename is not None else ""
        if not target and getattr(args, "out", None):
            target = f" into {args.out}"
        if exc.errno in _FULL:
            again = (
                "rerun the same command to resume (finished cells are saved)"
                if getattr(args, "command", None) in ("run", "demo")
                else "rerun the same command"
            )
            return (
                f"cannot write{target}: {exc.strerror}; the disk is full or a quota or file-size limit (ulimit -f) "
                f"was reached: free some space or raise the limit, then {again}"
            )
        return f"cannot access{target}: {exc.strerror}; check the path and its permissions"
    return str(exc)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While a command runs, SIGTERM raises ``Terminated`` in the main thread, so that ``finally`` blocks and
    context managers run (a run's lock is released, its manifest left consistent), as for Ctrl-C. A second
    SIGTERM during that cleanup is ignored, so the cleanup finishes (SIGKILL still ends everything)."""
    if not hasattr(signal, "SIGTERM") or not threading_is_main():
        yield
        return

    def handler(number, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def threading_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def was_terminated(exc: KeyboardInterrupt) -> bool:
    """SIGTERM rather than Ctrl-C (also when it came while a plugin was importing)."""
    return isinstance(exc, Terminated) or bool(getattr(exc, "terminated", False))  # PluginInterrupted


def interrupted(command: str | None, exc: KeyboardInterrupt) -> str:
    """The one line for Ctrl-C or SIGTERM: what was kept depends on the command."""
    what = "terminated (SIGTERM)" if was_terminated(exc) else "interrupted"
    if str(exc):  # PluginInterrupted: where it happened, and that nothing was written
        return f"{what} {str(exc).removeprefix('interrupted ')}"
    if command in ("run", "demo"):
        return f"{what}; finished cells are saved, rerun the same command to resume"
    if command in ("report", "plot", "explore"):
        return f"{what}; rerun the same command to write everything"
    return f"{what}; nothing was written"


def max_days_allowed(given: float | None) -> float:
    """--max-days, else $LOSSLAB_MAX_DAYS, else the default; a positive number (inf: no limit)."""
    from losslab.experiments.progress import MAX_DAYS  # here: the CLI's own start-up stays light

    where, value = "--max-days", given
    if value is None and os.environ.get("LOSSLAB_MAX_DAYS", "").strip():
        where, raw = "LOSSLAB_MAX_DAYS", os.environ["LOSSLAB_MAX_DAYS"].strip()
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"LOSSLAB_MAX_DAYS must be a number of days (or inf), got {raw!r}") from None
    if value is None:
        return MAX_DAYS
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{where} must be a positive number of days (or inf), got {value}")
    return value
