"""Test hook for the crash-safety tests: SIGKILL ourselves at a named point.

``N4A_TEST_KILL_AT=<point>`` in the environment makes ``kill_point(<point>)``
kill the process with SIGKILL (no cleanup, no ``finally``), the way a power
cut or ``kill -9`` would; tests/test_undo_crash.py then checks that the next
call finishes or rolls back and that the history says which.  Without the
variable it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "N4A_TEST_KILL_AT"
#: Where a destructive action or an undo can be killed in the tests.
KILL_POINTS = (
    "after_begin",  # history has the begin record; nothing else written
    "after_trash",  # the trash part is complete; nothing deleted yet
    "after_batch",  # the first delete batch is committed, more to go
    "before_end",  # everything committed; the end record is not written
    "undo_before_commit",  # an undo wrote arrays, its metadata transaction is open
    "undo_after_commit",  # an undo committed; the target is not yet marked undone
)


def kill_point(name: str, *, env: str = KILL_ENV) -> None:
    """SIGKILL this process when the environment variable ``env`` names ``name`` (tests only)."""
    if os.environ.get(env) == name:
        os.kill(os.getpid(), signal.SIGKILL)
