"""The commands a user types to run a spec again, built in one place of the command-line layer.

``losslab run`` (``losslab.cli``) and ``losslab demo`` (``losslab.demo``) build the command with
``run_command`` and hand it to ``run_spec``, which records it in the manifest; the results store reads
it back (adding ``--out``) in the messages that say how to finish or repair a folder, and never builds
one itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def run_command(spec, size: str | None, overrides: Sequence[str] = ()) -> str:
    """The command that runs ``spec`` (a name or a path) at ``size`` (None or "full": the full size) with its
    ``KEY=VALUE`` overrides, each quoted for the shell where it needs to be.

    >>> run_command("saturation", "smoke", ["train.epochs=3", "grid.a.lrs=[0.1, 0.3]"])
    "losslab run saturation --smoke train.epochs=3 'grid.a.lrs=[0.1, 0.3]'"
    """
    flag = "" if size in (None, "full") else (" --smoke" if size == "smoke" else f" --size {size}")
    return f"losslab run {shlex.quote(str(spec))}{flag}" + "".join(f" {shlex.quote(o)}" for o in overrides)
