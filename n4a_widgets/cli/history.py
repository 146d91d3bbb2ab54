"""Undo verbs: history, undo, purge-trash.

``history PATH`` lists the recorded write actions (local times).  ``undo PATH
ACTION_ID`` and ``purge-trash PATH`` are dry runs by default and print the plan
with its ``plan_id``; ``--yes --plan-id ID`` executes exactly that plan.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..core.workspace import Workspace
from .maintenance import _common, _require_plan, _tail
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("history", help="the write actions recorded in the workspace, newest first")
    p.add_argument("path", help="workspace folder")
    p.add_argument("--limit", type=int, default=100, help="at most this many actions (default 100)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(handler=_history)

    p = sub.add_parser("undo", help="take back a recorded action (dry run by default)")
    _common(p)
    p.add_argument("action_id", help="from `history`")
    p.set_defaults(handler=_undo)

    p = sub.add_parser("purge-trash", help="delete for good the trash of old actions (dry run by default)")
    _common(p)
    p.add_argument("--older-than-days", type=float, default=30, help="default 30; 0 purges everything")
    p.set_defaults(handler=_purge)


def _history(args: argparse.Namespace) -> int:
    from ..core.history import to_local

    records = Workspace(args.path).history(limit=args.limit)
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not records:
        print("history: no write action recorded yet")
        return 0
    for r in records:
        flags = " ".join(
            f for f, on in (("undoable", r.undoable), ("undone", r.undone), ("purged", r.purged),
                            ("interrupted", r.interrupted)) if on
        )
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items() if v)
        print(f"{to_local(r.started_at)}  {r.action_id}  {r.operation:<16} {r.outcome:<9} {counts}  {flags}".rstrip())
        if r.message:
            print(f"    {r.message}")
    return 0


def _undo(args: argparse.Namespace) -> int:
    _require_plan(args)
    r = Workspace(args.path).undo(
        args.action_id, dry_run=not args.yes, plan_id=args.plan_id, force=args.force,
        progress=CliProgress(not args.json),
    )
    verb = ("would restore", "would remove") if r.dry_run else ("restored", "removed")
    head = f"undo {r.action_id} ({r.operation}): {verb[0]} {r.restored} predictions, {verb[1]} {r.removed}"
    lines = [f"  {r.message}"] if r.message else []
    if r.already_present:
        lines.append(f"  {len(r.already_present)} already back (left as they are)")
    if r.missing:
        lines.append(f"  {len(r.missing)} not in the trash (cannot come back)")
    cmd = f"python -m n4a_widgets undo {args.path} {args.action_id}"
    emit(r, args.json, "\n".join([head, *lines, f"plan_id: {r.plan_id}"]) + _tail(r.dry_run, r.plan_id, cmd))
    return 0


def _purge(args: argparse.Namespace) -> int:
    _require_plan(args)
    r = Workspace(args.path).purge_trash(
        args.older_than_days, dry_run=not args.yes, plan_id=args.plan_id, force=args.force,
        progress=CliProgress(not args.json),
    )
    verb = "would purge" if r.dry_run else "purged"
    head = f"purge-trash: {verb} the trash of {r.purged_actions} action(s), {human_bytes(r.bytes)}"
    cmd = f"python -m n4a_widgets purge-trash {args.path} --older-than-days {args.older_than_days:g}"
    emit(r, args.json, "\n".join([head, *[f"  {a}" for a in r.action_ids], f"plan_id: {r.plan_id}"])
         + _tail(r.dry_run, r.plan_id, cmd))
    return 0
