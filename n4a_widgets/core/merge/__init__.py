"""Merge other workspaces (sources) into one (the target), batched.

A package by concern (docs/ARCHITECTURE.md): ``reports`` (report types and
constants), ``sources`` (read-only reading of sources and target), ``plan``
(the exact plan, its ``plan_id``), ``lineage`` (chains and models carried
over, what the replacements prune), ``archives`` (``.zip`` sources, read
safely), ``arrays`` (column-wise array reads), ``execute`` (the
``WriteOperation`` and the batched write).  Every name other modules import is
re-exported here.
"""

from __future__ import annotations

from .archives import ArchiveSet, archive_token, extract_workspace, is_archive
from .arrays import _ARRAY_FIELDS, _load_arrays, _records
from .execute import MergeOperation, _busy, _execute, _live_ids, _write_dataset, merge
from .lineage import LineagePlan, chain_artifact_ids, chain_refs, plan_lineage
from .plan import (
    _Batch,
    _dataset_writes,
    _DatasetWrite,
    _Entry,
    _forget,
    _KeyMaker,
    _new_id,
    _Plan,
    _remember,
    _request,
    _reuse_plan,
    _SourceInfo,
    build_plan,
    conflict_key_dict,
)
from .reports import (
    _COPY_COLUMNS,
    _EXTRA_COLUMNS,
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
    check_source,
    sibling_workspaces,
    source_datasets,
)

__all__ = [
    "CONFLICT_SAMPLE",
    "KEY_COLUMNS",
    "STRATEGIES",
    "_ARRAY_FIELDS",
    "_COPY_COLUMNS",
    "_EXTRA_COLUMNS",
    "ArchiveSet",
    "LineagePlan",
    "MergeArtifactChange",
    "MergeChainChange",
    "MergeConflict",
    "MergeOperation",
    "MergeReport",
    "MergeSourceReport",
    "SourceRef",
    "_Batch",
    "_DatasetWrite",
    "_Entry",
    "_KeyMaker",
    "_Plan",
    "_SourceInfo",
    "_array_index",
    "_busy",
    "_check_source",
    "_check_target",
    "_count_predictions",
    "_dataset_names",
    "_dataset_writes",
    "_execute",
    "_forget",
    "_live_ids",
    "_load_arrays",
    "_new_id",
    "_read_lineage",
    "_read_store",
    "_records",
    "_remember",
    "_request",
    "_resolve_sources",
    "_reuse_plan",
    "_write_dataset",
    "archive_token",
    "build_plan",
    "chain_artifact_ids",
    "chain_refs",
    "check_source",
    "conflict_key_dict",
    "extract_workspace",
    "is_archive",
    "merge",
    "plan_lineage",
    "sibling_workspaces",
    "source_datasets",
]
