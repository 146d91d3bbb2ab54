"""Maintenance verbs: compact, clean, remove-bottom.

Each is a dry run by default and prints the plan with its ``plan_id``;
``--yes --plan-id ID`` executes exactly that plan (refused if the workspace
changed since).  ``--force`` overrides a stale job marker or a run left
'running' by a crashed process.
"""

from __future__ import annotations

import argparse

from ..core.errors import InvalidArgumentError
from ..core.workspace import Workspace
from .output import CliProgress, emit, human_bytes


def _common(p: argparse.ArgumentParser, *, plan: bool = True) -> None:
    p.add_argument("path", help="workspace folder")
    p.add_argument("--yes", action="store_true", help="execute (default: dry run, changes nothing)")
    if plan:
        p.add_argument("--plan-id", help="the plan_id printed by the dry run; required with --yes")
    p.add_argument(
        "--force",
        action="store_true",
        help="take over a stale job lock / ignore runs left 'running' by a crashed process",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("compact", help="apply pending deletes and rewrite array files (dry run by default)")
    _common(p)
    p.add_argument("--dataset", help="only this dataset")
    p.set_defaults(handler=_compact)

    p = sub.add_parser("clean", help="remove predictions without arrays and array rows without predictions")
    _common(p)
    p.set_defaults(handler=_clean)

    p = sub.add_parser("remove-bottom", help="remove the worst FRACTION of predictions (ranked per metric)")
    _common(p)
    p.add_argument("--fraction", type=float, required=True, help="0..1, e.g. 0.1 for the worst 10%%")
    p.add_argument("--metric", default="val_score", help="score column (default val_score)")
    p.add_argument("--partition", default="val", help="partition to rank (default val; 'all' for every one)")
    p.add_argument("--dataset", help="only this dataset")
    p.set_defaults(handler=_remove_bottom)


def _require_plan(args: argparse.Namespace) -> None:
    if args.yes and not args.plan_id:
        raise InvalidArgumentError(
            "--yes needs --plan-id.", "Run the same command without --yes first and pass the plan_id it prints."
        )


def _tail(report_dry: bool, plan_id: str, cmd: str) -> str:
    if report_dry:
        return f"\nDry run: nothing changed. To execute this plan: {cmd} --yes --plan-id {plan_id}"
    return ""


def _compact(args: argparse.Namespace) -> int:
    r = Workspace(args.path).compact(
        dataset_name=args.dataset, dry_run=not args.yes, plan_id=args.plan_id, force=args.force,
        progress=CliProgress(not args.json),
    )
    verb = "would remove" if r.dry_run else "removed"
    lines = [
        f"  {d.dataset_name}: {verb} {d.rows_removed} of {d.rows_before} rows"
        + ("" if d.bytes_after is None else f", {human_bytes(d.bytes_before)} -> {human_bytes(d.bytes_after)}")
        for d in r.datasets
    ]
    head = f"compact: {verb} {r.rows_removed} array rows ({r.pending_tombstones_before} pending deletes)"
    if r.bytes_reclaimed is not None:
        head += f", reclaimed {human_bytes(r.bytes_reclaimed)}"
    if r.cancelled:
        head += " (cancelled part-way)"
    tail = _tail(r.dry_run, r.plan_id, f"python -m n4a_widgets compact {args.path}")
    emit(r, args.json, "\n".join([head, *lines, f"plan_id: {r.plan_id}"]) + tail)
    return 0


def _clean(args: argparse.Namespace) -> int:
    _require_plan(args)
    r = Workspace(args.path).clean_dead_links(
        dry_run=not args.yes, plan_id=args.plan_id, force=args.force, progress=CliProgress(not args.json)
    )
    verb = "would remove" if r.dry_run else "removed"
    head = (
        f"clean: {verb} {r.removed_metadata} predictions without arrays and {r.removed_array_rows} array rows "
        f"without a prediction" + (" (cancelled part-way)" if r.cancelled else "")
    )
    lines = [f"  {d.dataset_name}: {d.metadata_orphans} / {d.array_orphans}" for d in r.datasets]
    emit(
        r,
        args.json,
        "\n".join([head, *lines, f"plan_id: {r.plan_id}"])
        + _tail(r.dry_run, r.plan_id, f"python -m n4a_widgets clean {args.path}"),
    )
    return 0


def _remove_bottom(args: argparse.Namespace) -> int:
    _require_plan(args)
    partition = None if args.partition in ("all", "") else args.partition
    r = Workspace(args.path).remove_bottom(
        args.fraction,
        metric=args.metric,
        partition=partition,
        dataset_name=args.dataset,
        dry_run=not args.yes,
        plan_id=args.plan_id,
        force=args.force,
        progress=CliProgress(not args.json),
    )
    verb = "would remove" if r.dry_run else "removed"
    head = f"remove-bottom: {verb} {r.removed} of {r.total} predictions ({r.remaining} remain)" + (
        " (cancelled part-way)" if r.cancelled else ""
    )
    lines = [f"  {d.dataset_name}: {d.removed} of {d.total}" for d in r.datasets]
    lines += [f"  metric {g.metric}: {g.removed} of {g.total}, threshold {g.threshold_score}" for g in r.groups]
    cmd = (
        f"python -m n4a_widgets remove-bottom {args.path} --fraction {args.fraction} --metric {args.metric} "
        f"--partition {args.partition}" + (f" --dataset {args.dataset!r}" if args.dataset else "")
    )
    emit(r, args.json, "\n".join([head, *lines, f"plan_id: {r.plan_id}"]) + _tail(r.dry_run, r.plan_id, cmd))
    return 0
