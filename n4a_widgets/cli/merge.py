"""``merge TARGET SOURCE... [--on-conflict S] [--dataset D ...] [--yes --plan-id ID] [--force] [--json]``.

A dry run by default: prints the plan and its ``plan_id``.  ``--yes`` executes;
with ``--plan-id`` it executes only that previewed plan (refused if the target
or a source changed since).
"""

from __future__ import annotations

import argparse

from ..core.merge import STRATEGIES, MergeReport
from ..core.workspace import Workspace
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "merge", help="merge other workspaces into TARGET (dry run unless --yes)",
        description="Merge the predictions of SOURCE workspaces into TARGET. Without --yes nothing is written: "
        "the exact plan is printed with its plan id. Strategies: "
        + " ".join(f"{k}: {v}" for k, v in STRATEGIES.items()),
    )
    p.add_argument("target", help="workspace to merge into (an empty folder starts a new workspace)")
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="workspaces (folders or .zip archives of one) to read from (never modified)")
    p.add_argument("--on-conflict", choices=sorted(STRATEGIES), default="keep_best",
                   help="what to do when both hold the same model result (default keep_best)")
    p.add_argument("--dataset", action="append", dest="datasets", metavar="D",
                   help="merge only this dataset (repeatable)")
    p.add_argument("--yes", action="store_true", help="execute the merge (default: dry run)")
    p.add_argument("--plan-id", help="execute only the plan a previous dry run printed")
    p.add_argument("--force", action="store_true", help="take over a job lock left by a process that no longer exists")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_merge)


def summary(r: MergeReport) -> str:
    head = "Plan (dry run, nothing written)" if r.dry_run else "Merged"
    lines = [
        f"{head}: {r.message}",
        f"target {r.target}: {r.predictions_before} -> {r.predictions_after} predictions; "
        f"strategy {r.on_conflict}; ~{human_bytes(r.bytes)} of arrays",
        f"models: {r.chains_added} chain(s) and {r.artifacts_added} model file(s) "
        f"({human_bytes(r.artifact_bytes_added)}) {'to add' if r.dry_run else 'added'}; {r.chains_removed} chain(s) "
        f"and {r.artifacts_removed} model file(s) ({human_bytes(r.artifact_bytes_removed)}) "
        f"{'to remove' if r.dry_run else 'removed'} (no longer used by any prediction)",
    ]
    for s in r.sources:
        lines.append(
            f"  {s.name}{' (.zip)' if s.archive else ''}: {s.added} added, {s.removed} replaced, "
            f"{s.conflicts} conflicts "
            f"({s.kept_existing} kept the target's), {s.skipped} skipped; datasets {', '.join(s.datasets) or '-'}"
        )
        lines += [f"    ! {e}" for e in s.errors]
    if r.dry_run:
        lines.append(f"plan id: {r.plan_id}  (execute with: --yes --plan-id {r.plan_id})")
    return "\n".join(lines)


def _merge(args: argparse.Namespace) -> int:
    if args.plan_id and not args.yes:
        args.yes = True
    r = Workspace(args.target).merge(
        args.sources, on_conflict=args.on_conflict, datasets=args.datasets,
        dry_run=not args.yes, plan_id=args.plan_id, progress=CliProgress(not args.json), force=args.force,
    )
    emit(r, args.json, summary(r))
    return 0
