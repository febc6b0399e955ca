"""The commands a user types to run a spec again, built in one place of the command-line layer.

``losslab run`` (``losslab.cli``) and ``losslab demo`` (``losslab.demo``) build the command with
``run_command`` and hand it to ``run_spec``, which records it in the manifest; the results store reads
it back (adding ``--out``) in the messages that say how to finish or repair a folder, and never builds
one itself.
"""

from __future__ import annotations

import shlex


def run_command(spec, size: str | None) -> str:
    """The command that runs ``spec`` (a name or a path) at ``size`` (None or "full": the full size).

    >>> run_command("saturation", "smoke")
    'losslab run saturation --smoke'
    """
    flag = "" if size in (None, "full") else (" --smoke" if size == "smoke" else f" --size {size}")
    return f"losslab run {shlex.quote(str(spec))}{flag}"
