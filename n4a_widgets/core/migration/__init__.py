"""Migrate a legacy workspace into the current nirs4all format, never in place.

The package, by concern (docs/ARCHITECTURE.md, "Migration"):

- ``operation`` — ``migrate()`` and ``MigrateOperation``, the migration on the one write
  skeleton (``write_op.run_write``): plan with ``plan_id``, guard, re-plan, check, execute;
- ``execute`` — journal, build, verify and publish a checked plan;
- ``context`` — the run context and the lock marker beside the source;
- ``plan`` — the read-only survey of a source and the dry-run report;
- ``build_convert`` / ``build_upgrade`` — building the staging copy through nirs4all's API;
- ``journal`` — the fsynced journal, publish and rollback (crash safety);
- ``readers`` / ``verify`` — read-only legacy readers and the full verification;
- ``report`` — ``MigrationReport``.

See ``operation``'s docstring for the steps and the safety contract.
"""

from __future__ import annotations

from .context import _lock_marker, lock_marker
from .journal import KILL_ENV, KILL_POINTS, read_journal, write_journal
from .operation import ACTIONS, RECEIPT_FILE, MigrateOperation, MigrationPlan, migrate
from .plan import tree_size
from .report import MigrationReport

__all__ = [
    "ACTIONS",
    "KILL_ENV",
    "KILL_POINTS",
    "RECEIPT_FILE",
    "MigrateOperation",
    "MigrationPlan",
    "MigrationReport",
    "_lock_marker",
    "lock_marker",
    "migrate",
    "read_journal",
    "tree_size",
    "write_journal",
]
