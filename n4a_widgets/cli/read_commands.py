"""Read-only verbs: status, health, stats."""

from __future__ import annotations

import argparse

from ..core.workspace import Workspace
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("status", help="storage format and whether a migration is needed")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_status)

    p = sub.add_parser("health", help="counts, sizes and integrity (read-only)")
    p.add_argument("path")
    p.add_argument("--deep", action="store_true", help="decode every array file (slower)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_health)

    p = sub.add_parser("stats", help="disk usage by category")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_stats)


def _status(args: argparse.Namespace) -> int:
    s = Workspace(args.path).status()
    emit(s, args.json, f"{s.storage_mode} ({s.format}, {s.layout}): {s.message}")
    return 0


def _health(args: argparse.Namespace) -> int:
    r = Workspace(args.path).health(deep=args.deep, progress=CliProgress(not args.json))
    lines = [
        f"{r.storage_mode}: {r.message}",
        f"{r.total_predictions} predictions in {r.total_datasets} datasets; "
        f"arrays {human_bytes(r.parquet_total_bytes)}, metadata {human_bytes(r.metadata_store_bytes)}, "
        f"artifacts {human_bytes(r.artifacts_bytes)}; {r.pending_tombstones} pending deletes",
    ]
    lines += [
        f"  {d.name}: {d.prediction_count} predictions, {human_bytes(d.parquet_size_bytes)}, "
        f"{d.pending_tombstones} pending deletes"
        for d in r.datasets
    ]
    emit(r, args.json, "\n".join(lines))
    return 0


def _stats(args: argparse.Namespace) -> int:
    s = Workspace(args.path).stats()
    lines = [f"{u.name:<18} {human_bytes(u.size_bytes):>10} {u.file_count:>6} files" for u in s.space_usage]
    emit(s, args.json, "\n".join([*lines, f"{'Total':<18} {human_bytes(s.total_size_bytes):>10}"]))
    return 0
