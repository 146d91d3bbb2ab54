"""``export PATH DEST``: live predictions to portable Parquet (file, zip or folder)."""

from __future__ import annotations

import argparse

from ..core.workspace import Workspace
from .output import CliProgress, emit, human_bytes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export",
        help="write live predictions with their arrays to Parquet (read-only on the workspace)",
        description="One Parquet file per dataset, readable by polars/pandas/duckdb without nirs4all. "
        "Deleted (tombstoned) predictions never appear. Several datasets go into a zip (or a folder).",
    )
    p.add_argument("path", help="the workspace folder")
    p.add_argument("dest", help="output file (.parquet or .zip) or folder")
    p.add_argument("--dataset", action="append", dest="datasets", metavar="NAME",
                   help="dataset to export (repeat for several; default: all)")
    p.add_argument("--partition", help="only this partition (train, val, test)")
    p.add_argument("--model", dest="model_name", help="only this model name")
    p.add_argument("--fold", dest="fold_id", help="only this fold id (0, 1, avg, final, ...)")
    p.add_argument("--format", default="auto", choices=("auto", "parquet", "zip", "folder"),
                   help="auto: a .parquet for one dataset, a .zip for several")
    p.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    r = Workspace(args.path).export(
        args.dest, datasets=args.datasets, partition=args.partition, model_name=args.model_name,
        format=args.format, fold_id=args.fold_id, overwrite=args.overwrite, progress=CliProgress(not args.json),
    )
    lines = [f"exported {r.total_rows} predictions ({human_bytes(r.total_bytes)}) to {r.dest} "
             f"[{r.format}] in {r.duration_seconds:.1f} s"]
    lines += [f"  {f.dataset}: {f.rows} rows, {human_bytes(f.bytes)} -> {f.member or f.path}" for f in r.files]
    if r.excluded_tombstoned or r.excluded_orphans:
        lines.append(f"  left out: {r.excluded_tombstoned} deleted (pending compaction), "
                     f"{r.excluded_orphans} array rows without a prediction")
    lines += [f"  note: {n}" for n in r.notes]
    emit(r, args.json, "\n".join(lines))
    return 0
