"""``migrate PATH [--dry-run | --yes] [--output DIR] [--plan-id ID] [--force] [--resume | --rollback] [--json]``.

Safe by default: without ``--yes`` (alias ``--execute``) the verb is a dry run
that reads the legacy store and prints what would be migrated; nothing is
written anywhere.  ``--yes`` converts into a staging folder beside the source,
verifies every prediction and array, then publishes: in place (the original is
kept as ``<name>.legacy-<timestamp>``) or, with ``--output DIR``, into DIR with
the source untouched.  ``--resume`` / ``--rollback`` finish or undo an
interrupted migration (combine with ``--yes``; alone they preview).
``--plan-id ID`` (printed by the dry run) executes exactly the previewed plan:
refused if the source changed since, and the backup gets the name the dry run
showed.  ``--force`` takes over a lock left by a crashed migration.
"""

from __future__ import annotations

import argparse

from ..core.workspace import Workspace
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "migrate", help="convert a legacy workspace (dry run unless --yes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="only report what would be migrated (the default)")
    mode.add_argument("--yes", "--execute", dest="execute", action="store_true", help="really migrate")
    p.add_argument("--output", metavar="DIR", help="write the result to DIR and leave the source where it is")
    p.add_argument("--plan-id", metavar="ID", help="execute the plan a dry run printed (refused if anything changed)")
    p.add_argument("--force", action="store_true", help="take over a lock left by a crashed migration")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--resume", action="store_true", help="finish an interrupted migration")
    which.add_argument("--rollback", action="store_true", help="undo an interrupted migration")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    action = "resume" if args.resume else "rollback" if args.rollback else "auto"
    dry = not args.execute
    r = Workspace(args.path).migrate(
        dry_run=dry, output=args.output, plan_id=args.plan_id, force=args.force, action=action,
        progress=CliProgress(not args.json and not dry),
    )
    if r.dry_run:
        lines = [
            f"DRY RUN ({r.source_format}): nothing was written. Add --yes to migrate.",
            f"{r.total_rows} predictions in {r.datasets_migrated} datasets ({r.rows_migrated} to migrate); "
            f"legacy store {human_bytes(r.duckdb_size_before)}, arrays {human_bytes(r.legacy_array_bytes)}; "
            f"estimated {r.estimated_duration_seconds or 0:.0f} s",
            f"result at {r.output_path}" + (f"; original kept as {r.backup_path}" if r.backup_path else ""),
            f"plan id: {r.plan_id} (pass --yes --plan-id {r.plan_id} to execute exactly this plan)",
            *(f"  {d['name']}: {d['predictions']} predictions" for d in r.datasets),
            *(f"note: {w}" for w in r.warnings), *(f"error: {e}" for e in r.errors),
        ]
    elif r.state == "rolled_back":
        lines = [f"Rolled back: the original workspace is at {r.output_path}."]
    else:
        lines = [
            f"Migrated {r.rows_migrated}/{r.total_rows} predictions in {r.datasets_migrated} datasets "
            f"in {r.duration_seconds:.1f} s; verification {'passed' if r.verification_passed else 'FAILED'} "
            f"({r.verification_sample_size} predictions, {r.array_values_verified} array values).",
            f"size {human_bytes(r.size_before_bytes)} -> {human_bytes(r.size_after_bytes)}",
            f"new workspace: {r.output_path}",
            f"original kept at: {r.backup_path or args.path + ' (untouched)'}",
        ]
    emit(r, args.json, "\n".join(lines))
    return 0
