"""Merge other workspaces (sources) into this one (the target), batched.

Same semantics as nirs4all's ``Predictions.merge_stores`` — its conflict key
(dataset, model, fold, partition, preprocessing, branch, metric, refit context
and the model specification: expanded config, generator choices, best params,
model step, branch path, source index), its strategies and its tie rules —
but planned in memory first, so a dry run reports exactly what will happen,
and written in batches: per dataset, one SQLite transaction and one
``ArrayStore.save_batch`` for all sources (nirs4all rewrites the whole array
file per row).  A source row that a later source replaces is counted as
nirs4all counts it (added, then removed) but never written.  Confirming a
preview in the same process reuses the previewed plan when the target's and
every source's state token are unchanged (else it plans again and compares
plan ids).  Arrays are read column-wise (``_load_arrays``, checked against
nirs4all's ``load_batch``) and written with nirs4all's ``save_batch``.

How a batch is written, and why (crash windows)::

    BEGIN
      per source: begin_run / begin_pipeline / save_chain / save_prediction ...  (SQLite, uncommitted)
      re-check the target's ids for this dataset (plan still valid?)
      array_store.save_batch(new rows of every source)                   (arrays published)
      _delete_predictions_matching(replaced target ids)                  (SQLite + tombstones)
    COMMIT

A kill before ``save_batch`` leaves the target as it was.  A kill between
``save_batch`` and ``COMMIT`` leaves array rows without a prediction (harmless:
nirs4all reads through SQLite, ``clean_dead_links`` removes them) and maybe
tombstones of rows that are still live (nirs4all's validated compaction drops
stale tombstones and keeps the arrays).  A prediction is never committed
before its arrays exist, so there is never a prediction without arrays.  A
kill between batches leaves complete predictions of the finished batches.
Artifact garbage collection is deferred by nirs4all inside a transaction and
run once after the batch commits.

Where we differ from ``merge_stores``, on purpose: one merge run per source
and dataset (completed, not left ``running``) instead of one never-completed
run per source chain; source rows whose arrays are missing are skipped and
reported instead of being saved as predictions without arrays; the extra
schema-5 columns (prediction scope, unit ids, ...) are copied too.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import operator
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    InvalidArgumentError,
    OperationCancelledError,
)
from ..progress import Progress
from .archives import ArchiveSet, archive_token
from .lineage import LINEAGE_SAMPLE, LineagePlan, plan_lineage
from .reports import (
    CONFLICT_SAMPLE,
    KEY_COLUMNS,
    STRATEGIES,
    MergeArtifactChange,
    MergeChainChange,
    MergeConflict,
    MergeReport,
    MergeSourceReport,
)
from .sources import (
    SourceRef,
    _array_index,
    _check_source,
    _check_target,
    _count_predictions,
    _dataset_names,
    _read_lineage,
    _read_store,
    _resolve_sources,
)

_key_values = operator.itemgetter(*KEY_COLUMNS)
_ID_NAMESPACE = uuid.UUID("6f1d0b3e-3c51-4e6a-9a57-5a0f3d2c8e11")


# ------------------------------------------------------------- planning


@dataclass
class _Entry:
    """A prediction in the (simulated) target."""

    prediction_id: str
    val_score: float | None


@dataclass
class _Batch:
    source_index: int
    dataset: str
    adds: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass
class _SourceInfo:
    path: Path
    """Where the source is read: its folder, or the private folder its archive was extracted to."""
    token: str
    rows: list[dict[str, Any]]
    pipelines: dict[str, dict[str, Any]]
    chains: dict[str, dict[str, Any]]
    array_ids: dict[str, set[str]]
    file_info: dict[str, tuple[int, int]]  # dataset -> (bytes, rows)
    origin: Path = Path()
    """What the user gave (a folder or a .zip)."""
    archive: bool = False
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.origin.stem if self.archive else self.origin.name


@dataclass
class _Plan:
    plan_id: str
    report: MergeReport
    batches: list[_Batch]
    sources: list[_SourceInfo]
    target_ids: dict[str, set[str]]
    params: dict[str, Any] = field(default_factory=dict)
    target_token: str = ""
    writes: list[_DatasetWrite] = field(default_factory=list)
    lineage: LineagePlan | None = None

    @property
    def added_ids(self) -> list[str]:
        """Prediction ids the execution writes (a row a later source replaces is never written)."""
        return [nid for w in self.writes for _, adds, _ in w.parts for _, nid in adds]

    @property
    def removed_ids(self) -> list[str]:
        """Target predictions (present before the merge) the execution deletes."""
        return [pid for w in self.writes for pid in w.removes]


@dataclass
class _DatasetWrite:
    """Every source's batch for one dataset, written in one transaction and one ``save_batch``.

    A source row that a later source replaces (its new id is in a later batch's removes) is the
    same net result whether it is written then deleted, as ``merge_stores`` does, or never
    written: it is not written (no array rewrite, tombstone or compaction for it).  The report
    still counts it as added by its source and removed by the later one, as nirs4all would.
    """

    dataset: str
    parts: list[tuple[_SourceInfo, list[tuple[dict[str, Any], str]], int]]  # (source, surviving adds, replaced)
    removes: list[str]  # target predictions (present before the merge) to delete
    work: int  # adds + removes of the plan's batches (progress units)


def _dataset_writes(batches_all: list[_Batch], sources: list[_SourceInfo], target_ids: dict[str, set[str]]) -> list[
    _DatasetWrite
]:
    groups: dict[str, list[_Batch]] = {}
    for batch in batches_all:
        groups.setdefault(batch.dataset, []).append(batch)
    out = []
    for ds in sorted(groups):
        batches = groups[ds]
        before = target_ids.get(ds, set())
        superseded = {pid for b in batches for pid in b.removes if pid not in before}
        parts = []
        for b in batches:
            adds = [(row, nid) for row, nid in b.adds if nid not in superseded]
            if adds:
                parts.append((sources[b.source_index], adds, len(b.removes)))
        removes = [pid for b in batches for pid in b.removes if pid in before]
        out.append(_DatasetWrite(ds, parts, removes, sum(len(b.adds) + len(b.removes) for b in batches)))
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class _KeyMaker:
    """``Predictions._merge_conflict_key`` without a store round trip per row."""

    def __init__(self, pipelines: dict[str, dict[str, Any]], chains: dict[str, dict[str, Any]]) -> None:
        self.pipelines = pipelines
        self.chains = chains
        self._cache: dict[tuple[Any, Any, Any], str] = {}

    def spec(self, row: dict[str, Any]) -> str:
        cache_key = (row.get("pipeline_id"), row.get("chain_id"), row.get("best_params"))
        spec = self._cache.get(cache_key)
        if spec is None:
            pipeline = self.pipelines.get(row.get("pipeline_id") or "") or {}
            chain = self.chains.get(row.get("chain_id") or "") or {}
            params = _json(row.get("best_params"))
            spec = json.dumps(
                [_json(pipeline.get("expanded_config")) or [], _json(pipeline.get("generator_choices")) or [],
                 params or {}, chain.get("model_step_idx"), _json(chain.get("branch_path")), chain.get("source_index")],
                sort_keys=True,
            )
            self._cache[cache_key] = spec
        return spec

    def key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return (*_key_values(row), self.spec(row))


def conflict_key_dict(key: tuple[Any, ...]) -> dict[str, Any]:
    """Readable form of a conflict key (the specification as a short digest)."""
    out = dict(zip(KEY_COLUMNS, key[:-1], strict=True))
    out["specification"] = hashlib.sha256(str(key[-1]).encode()).hexdigest()[:12]
    return out


def _new_id(seed: str, source_index: int, source_pid: str) -> str:
    """``str(uuid.uuid5(_ID_NAMESPACE, f"{seed}:{source_index}:{source_pid}"))``, without the UUID object."""
    b = bytearray(hashlib.sha1(_ID_NAMESPACE.bytes + f"{seed}:{source_index}:{source_pid}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def build_plan(
    target: Path,
    sources: Sequence[Any],
    on_conflict: str,
    datasets: Sequence[str] | None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    archives: ArchiveSet | None = None,
) -> _Plan:
    """Compute, read-only, exactly what the merge will write and delete.

    Archive sources are extracted into ``archives`` (private temporary
    folders the caller removes); without one they are removed on return.
    """
    if archives is None:
        with ArchiveSet() as own:
            return build_plan(target, sources, on_conflict, datasets, progress=progress, cancel=cancel, span=span,
                              archives=own)
    from nirs4all.core.metrics import infer_ascending

    from ..plans import make_plan_id, workspace_state_token

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * fraction, message)

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise OperationCancelledError("Merge preview cancelled; nothing was changed.")

    ds_filter, refs, params = _request(target, sources, on_conflict, datasets)

    # Sources: rows, specs, array ids, lineage.
    infos: list[_SourceInfo] = []
    for i, ref in enumerate(refs):
        check_cancel()
        report(0.6 * i / len(refs), f"Reading source {ref.name}")
        path = archives.open(ref.origin) if ref.archive else ref.origin
        if ref.archive:  # folders were checked by _request
            _check_source(path, label=str(ref.origin))
        token = _source_token(ref, path)
        rows, pipelines, chains = _read_store(path, full=True, datasets=set(ds_filter) if ds_filter else None)
        ds_set = {r["dataset_name"] for r in rows}
        array_ids, file_info = _array_index(path, ds_set)
        runs, artifacts = _read_lineage(path)
        infos.append(_SourceInfo(path, token, rows, pipelines, chains, array_ids, file_info, ref.origin, ref.archive,
                                 runs, artifacts))

    all_source_ds = set().union(*({r["dataset_name"] for r in s.rows} for s in infos))
    if ds_filter is not None:
        missing = [d for d in ds_filter if d not in all_source_ds]
        if missing:
            avail = set().union(*(_dataset_names(s.path) for s in infos if (s.path / "store.sqlite").exists()))
            raise InvalidArgumentError(
                f"No source has dataset(s) {', '.join(map(repr, missing))}.",
                f"Datasets in the sources: {', '.join(sorted(avail)) or 'none'}.",
            )

    # Target: the predictions that can conflict (same datasets).
    check_cancel()
    report(0.65, "Reading target")
    target_token = workspace_state_token(target)
    t_rows, t_pipes, t_chains = _read_store(target, full=False, datasets=all_source_ds)
    target_keys = _KeyMaker(t_pipes, t_chains)
    state: dict[tuple[Any, ...], list[_Entry]] = {}
    target_ids: dict[str, set[str]] = {}
    for r in t_rows:
        state.setdefault(target_keys.key(r), []).append(_Entry(r["prediction_id"], r.get("val_score")))
        target_ids.setdefault(r["dataset_name"], set()).add(r["prediction_id"])
    predictions_before = _count_predictions(target)

    seed = hashlib.sha256("|".join([target_token, *(s.token for s in infos)]).encode()).hexdigest()

    # Simulate merge_stores, source by source, row by row.
    batches: list[_Batch] = []
    source_rows: list[dict[str, Any]] = []
    removed_all: list[str] = []
    for si, info in enumerate(infos):
        check_cancel()
        report(0.7 + 0.3 * si / len(infos), f"Planning {info.name}")
        keys = _KeyMaker(info.pipelines, info.chains)
        snapshot = state  # nirs4all compares only with rows present before this source
        additions: list[tuple[tuple[Any, ...], _Entry]] = []
        by_ds: dict[str, _Batch] = {}
        conflicts = kept = skipped = removed = 0
        details: list[MergeConflict] = []
        errors: list[str] = []
        no_arrays: dict[str, int] = {}
        ds_seen: set[str] = set()
        for row in info.rows:
            ds = row["dataset_name"]
            ds_seen.add(ds)
            pid = row["prediction_id"]
            if pid not in info.array_ids.get(ds, set()):
                skipped += 1
                no_arrays[ds] = no_arrays.get(ds, 0) + 1
                continue
            key = keys.key(row)
            existing = snapshot.get(key, [])
            winner = "source"
            if existing:
                conflicts += 1
                if on_conflict == "keep_existing":
                    winner = "target"
                elif on_conflict == "keep_best":
                    src = row.get("val_score")
                    if src is None or (isinstance(src, float) and math.isnan(src)):
                        winner = "target"
                    else:
                        ascending = infer_ascending(row.get("metric") or "rmse")
                        for ex in existing:
                            ex_s = ex.val_score
                            if ex_s is not None and not (isinstance(ex_s, float) and math.isnan(ex_s)) and (
                                ex_s <= src if ascending else ex_s >= src
                            ):
                                winner = "target"
                                break
            new_id = _new_id(seed, si, pid) if winner == "source" else None
            replaced: tuple[str, ...] = ()
            if existing:
                if winner == "target":
                    kept += 1
                else:
                    replaced = tuple(e.prediction_id for e in existing)
                if len(details) < CONFLICT_SAMPLE:
                    details.append(MergeConflict(
                        conflict_key_dict(key), pid, existing[0].prediction_id, winner, _finite(row.get("val_score")),
                        _finite(existing[0].val_score), new_id, replaced,
                    ))
            if winner == "target":
                continue
            batch = by_ds.get(ds)
            if batch is None:
                batch = by_ds[ds] = _Batch(si, ds)
            if replaced:
                batch.removes.extend(replaced)
                removed += len(replaced)
                removed_all.extend(replaced)
                snapshot[key] = []
            assert new_id is not None
            batch.adds.append((row, new_id))
            additions.append((key, _Entry(new_id, row.get("val_score"))))
        for key, entry in additions:
            state.setdefault(key, []).append(entry)
        for ds, n in sorted(no_arrays.items()):
            errors.append(f"{n} prediction(s) of dataset {ds!r} have no arrays in the source and were skipped.")
        total_bytes = 0
        for ds, batch in by_ds.items():
            size, nrows = info.file_info.get(ds, (0, 0))
            batch.bytes = round(size * len(batch.adds) / nrows) if nrows else 0
            total_bytes += batch.bytes
        batches.extend(by_ds[d] for d in sorted(by_ds))
        source_rows.append(dict(
            path=str(info.origin), name=info.name, archive=info.archive, predictions=len(info.rows),
            added=sum(len(b.adds) for b in by_ds.values()), removed=removed, conflicts=conflicts,
            kept_existing=kept, skipped=skipped, datasets=tuple(sorted(ds_seen)), bytes=total_bytes,
            conflict_details=tuple(details), conflicts_truncated=conflicts > len(details), errors=errors,
        ))

    # Lineage: the chains and models the surviving adds need, and what the replacements prune.
    report(0.97, "Planning chains and models")
    writes = _dataset_writes(batches, infos, target_ids)
    t_artifacts = _read_lineage(target)[1]
    chain_of = {r["prediction_id"]: r["chain_id"] for r in t_rows}
    chain_counts = collections.Counter(r["chain_id"] for r in t_rows)
    lineage = plan_lineage(
        target, infos, writes, t_chains, t_artifacts, chain_of, dict(chain_counts),
        lambda si, what: _new_id(seed, si, what),
    )
    per_source_chains = collections.Counter(c["source"] for c in lineage.chains_added)
    per_source_arts = collections.Counter(a["source"] for a in lineage.artifacts_added)
    per_source_art_bytes: collections.Counter[str] = collections.Counter()
    for a in lineage.artifacts_added:
        per_source_art_bytes[a["source"]] += a["size_bytes"]
    source_reports = []
    for si, kw in enumerate(source_rows):
        name = kw["name"]
        kw["errors"] = tuple(kw["errors"] + lineage.errors[si])
        source_reports.append(MergeSourceReport(
            **kw, chains_added=per_source_chains[name], artifacts_added=per_source_arts[name],
            artifact_bytes=per_source_art_bytes[name],
        ))

    added = sum(s.added for s in source_reports)
    removed_total = len(removed_all)
    ids = [f"-{p}" for p in removed_all] + [f"+{nid}" for b in batches for _, nid in b.adds]
    plan_id = make_plan_id("merge", params, ids, seed)
    datasets_merged = tuple(sorted(set().union(*(set(s.datasets) for s in source_reports))))
    conflicts_total = sum(s.conflicts for s in source_reports)
    msg = (
        f"{added} prediction(s) to add from {len(infos)} source(s) with {len(lineage.chains_added)} chain(s) and "
        f"{len(lineage.artifacts_added)} new model file(s); {removed_total} target prediction(s) replaced, "
        f"{len(lineage.chains_removed)} chain(s) and {len(lineage.artifacts_removed)} model file(s) removed; "
        f"{conflicts_total} conflict(s)."
    )
    rep = MergeReport(
        target=str(target), dry_run=True, plan_id=plan_id, on_conflict=on_conflict, datasets_filter=ds_filter,
        sources=tuple(source_reports), added=added, removed=removed_total, conflicts=conflicts_total,
        kept_existing=sum(s.kept_existing for s in source_reports), skipped=sum(s.skipped for s in source_reports),
        datasets_merged=datasets_merged, bytes=sum(s.bytes for s in source_reports),
        prediction_ids=tuple(removed_all), predictions_before=predictions_before,
        predictions_after=predictions_before + added - removed_total, message=msg,
        chains_added=len(lineage.chains_added), chains_removed=len(lineage.chains_removed),
        artifacts_added=len(lineage.artifacts_added), artifacts_removed=len(lineage.artifacts_removed),
        artifact_bytes_added=lineage.artifact_bytes_added, artifact_bytes_removed=lineage.artifact_bytes_removed,
        chain_changes=tuple(
            [MergeChainChange("added", c["dataset"], c["model_class"], c["preprocessings"], c["predictions"],
                              c["source_chain_id"], c["source"]) for c in lineage.chains_added[:LINEAGE_SAMPLE]]
            + [MergeChainChange("removed", c["dataset"], c["model_class"], c["preprocessings"], c["predictions"],
                                c["chain_id"], "") for c in lineage.chains_removed[:LINEAGE_SAMPLE]]
        ),
        artifact_changes=tuple(
            [MergeArtifactChange("added", a["artifact_id"], a["operator_class"], a["artifact_type"], a["size_bytes"],
                                 a["source"]) for a in lineage.artifacts_added[:LINEAGE_SAMPLE]]
            + [MergeArtifactChange("removed", a["artifact_id"], a["operator_class"], a["artifact_type"],
                                   a["size_bytes"], "") for a in lineage.artifacts_removed[:LINEAGE_SAMPLE]]
        ),
        lineage_truncated=max(len(lineage.chains_added), len(lineage.chains_removed), len(lineage.artifacts_added),
                              len(lineage.artifacts_removed)) > LINEAGE_SAMPLE,
    )
    report(1.0, "Plan ready")
    return _Plan(plan_id, rep, batches, infos, target_ids, params, target_token, writes, lineage)


def _source_token(ref: SourceRef, path: Path) -> str:
    """A folder's state token, or an archive's content fingerprint (each extraction is a fresh folder)."""
    from ..plans import workspace_state_token

    return f"zip:{archive_token(ref.origin)}" if ref.archive else workspace_state_token(path)


def _request(
    target: Path, sources: Sequence[Any], on_conflict: str, datasets: Sequence[str] | None,
) -> tuple[tuple[str, ...] | None, list[SourceRef], dict[str, Any]]:
    """Validate a merge request: (dataset filter, source paths, the parameters the plan_id covers)."""
    if on_conflict not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown conflict strategy {on_conflict!r}.", f"Use one of: {', '.join(STRATEGIES)}.",
        )
    if isinstance(datasets, str):
        datasets = [datasets]
    ds_filter = None if datasets is None else tuple(dict.fromkeys(str(d) for d in datasets))
    if ds_filter is not None and not ds_filter:
        raise InvalidArgumentError("The dataset filter is empty.", "Pass None to merge every dataset.")
    refs = _resolve_sources(target, sources)
    target_mode = _check_target(target)
    for ref in refs:
        if not ref.archive:
            _check_source(ref.origin)
    params = {
        "on_conflict": on_conflict, "datasets": list(ds_filter) if ds_filter else None,
        "sources": [str(r.origin.resolve()) for r in refs], "target": str(target.resolve()),
        "target_mode": target_mode,
    }
    return ds_filter, refs, params


# The last previewed plan, so that confirming it does not plan everything again.  It is reused only for
# the same request while the target's and every source's state token are unchanged (the token covers
# every prediction id and score and every array file), which is exactly when a fresh plan would be equal.
_PLAN_CACHE_LOCK = threading.Lock()
_PLAN_CACHE: dict[str, _Plan] = {}


def _remember(plan: _Plan) -> None:
    with _PLAN_CACHE_LOCK:
        _PLAN_CACHE.clear()
        _PLAN_CACHE[plan.plan_id] = plan


def _forget() -> None:
    """Drop the remembered preview (tests; frees its memory)."""
    with _PLAN_CACHE_LOCK:
        _PLAN_CACHE.clear()


def _reuse_plan(
    target: Path, sources: Sequence[Any], on_conflict: str, datasets: Sequence[str] | None, plan_id: str | None,
    archives: ArchiveSet,
) -> _Plan | None:
    """The remembered preview ``plan_id`` when nothing it depends on changed, else None (plan again).

    Archive sources are extracted afresh into ``archives`` (the preview's folders are gone).
    """
    from ..plans import workspace_state_token

    if plan_id is None:
        return None
    with _PLAN_CACHE_LOCK:
        plan = _PLAN_CACHE.pop(plan_id, None)  # a plan runs once
    if plan is None:
        return None
    _, _, params = _request(target, sources, on_conflict, datasets)
    if params != plan.params or workspace_state_token(target) != plan.target_token:
        return None
    for info in plan.sources:
        if info.archive:
            if f"zip:{archive_token(info.origin)}" != info.token:
                return None
        elif workspace_state_token(info.path) != info.token:
            return None
    for info in plan.sources:
        if info.archive:
            info.path = archives.open(info.origin)
    return plan


