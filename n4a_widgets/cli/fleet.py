"""``scan ROOT``: every workspace under a folder (read-only)."""

from __future__ import annotations

import argparse

from ..core.workspace import scan_workspaces
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scan", help="list every nirs4all workspace under a folder (read-only)")
    p.add_argument("path", metavar="ROOT")
    p.add_argument("--max-depth", type=int, default=6, help="folder levels below ROOT to search (default 6)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_scan)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _scan(args: argparse.Namespace) -> int:
    r = scan_workspaces(args.path, max_depth=args.max_depth, progress=CliProgress(not args.json))
    lines = []
    for e in r.workspaces:
        where = f"{e.path}!{e.archive_member}" if e.is_archive and e.archive_member else e.path
        extra = f"  error: {e.error}" if e.error else ""
        lines.append(
            f"{e.storage_mode:<13} {human_bytes(e.size_bytes):>10} {_count(e.total_predictions):>8} pred "
            f"{len(e.datasets):>3} ds  {e.last_run_at or '-':<26} {where}{extra}"
        )
    lines.append(
        f"{r.workspace_count} workspaces ({r.legacy_count} need a migration, {r.archive_count} archives): "
        f"{human_bytes(r.total_bytes)} on disk, {human_bytes(r.legacy_bytes)} legacy, "
        f"{human_bytes(r.reclaimable_bytes)} reclaimable"
    )
    lines += [f"skipped {s.path}: {s.reason}" for s in r.skipped]
    emit(r, args.json, "\n".join(lines))
    return 0
