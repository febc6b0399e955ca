"""The exception for bad input of the wrong type, which the command line reports as one line (exit code 2).

Bad input raises ``ValueError`` (a wrong value) or ``BadInputType`` (a wrong type, e.g. a list where a tensor
is needed); either message names the argument, the bad value and the fix. ``BadInputType`` is a
``TypeError``, so ``except TypeError`` still catches it, but a plain ``TypeError`` means a bug (in losslab,
or in a user's own code that losslab calls) and the command line shows its traceback (exit code 1)
instead of calling it bad input.

A base module: any layer may import it, and it imports nothing of losslab.
"""

from __future__ import annotations


class BadInputType(TypeError):
    """A value of the wrong type given by the user; the message names the argument, the type and the fix."""


#: What the command line reports as bad input (one line, exit code 2).
INPUT_ERRORS = (ValueError, BadInputType)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler's stop), raised by the command line's handler and treated as
    Ctrl-C is (cleanup runs, what finished is kept), but reported with exit code 143."""

    terminated = True  # what losslab.plugins looks for (it imports nothing of losslab)
