"""Merge reports and the constants they name: strategies, conflict-key columns, copied columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..reports import Report

#: nirs4all's strategy names, with the one-line explanation the widget and CLI show.
STRATEGIES: dict[str, str] = {
    "keep_best": "Keep whichever prediction has the better validation score (ties keep the target's).",
    "keep_existing": "Keep the target's prediction; add only predictions the target does not have.",
    "overwrite": "Replace the target's prediction with the source's.",
}

#: Columns of the conflict key, in nirs4all's order (``Predictions._merge_conflict_key``).
KEY_COLUMNS = (
    "dataset_name", "model_name", "model_class", "fold_id", "partition", "preprocessings", "branch_id", "metric",
    "refit_context",
)
#: Columns copied by ``save_prediction`` besides the ids.
_COPY_COLUMNS = (
    "model_name", "model_class", "fold_id", "partition", "val_score", "test_score", "train_score", "metric",
    "task_type", "n_samples", "n_features", "scores", "best_params", "preprocessings", "branch_id", "branch_name",
    "exclusion_count", "exclusion_rate", "refit_context",
)
#: Schema-5 columns that ``merge_stores`` drops and we keep (copied when present).
_EXTRA_COLUMNS = (
    "prediction_scope", "prediction_level", "evaluation_scope", "reduction_role", "reduction_id",
    "physical_sample_id", "origin_sample_id", "derived_unit_id", "unit_level", "unit_id", "row_id",
    "sample_influence_weight",
)
#: Conflicts listed in detail per source (counts are always exact).
CONFLICT_SAMPLE = 200


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class MergeConflict(Report):
    """One source prediction whose conflict key the target already holds."""

    key: dict[str, Any]
    """The conflict key: dataset, model, fold, partition, ... and a digest of the model specification."""
    source_id: str
    target_id: str
    """The target prediction compared against (the first one when several share the key)."""
    winner: str
    """``"source"`` (the target's prediction(s) are replaced) or ``"target"`` (the source row is skipped)."""
    source_score: float | None
    target_score: float | None
    new_id: str | None
    """Id the source prediction gets in the target when it wins."""
    replaced_ids: tuple[str, ...]


@dataclass(frozen=True)
class MergeChainChange(Report):
    """A chain (a fitted model with its preprocessing) the merge adds to or removes from the target."""

    change: str
    """``"added"`` (copied from a source) or ``"removed"`` (every prediction of it replaced)."""
    dataset: str
    model_class: str
    preprocessings: str
    predictions: int
    chain_id: str
    """The source's chain id (added) or the target's (removed); an added chain gets a new id in the target."""
    source: str


@dataclass(frozen=True)
class MergeArtifactChange(Report):
    """A model file (artifact) the merge registers in the target or that nirs4all's clean-up removes."""

    change: str
    artifact_id: str
    operator_class: str
    artifact_type: str
    size_bytes: int
    """Bytes copied (added; 0 when the same content is already there) or freed (removed)."""
    source: str


@dataclass(frozen=True)
class MergeSourceReport(Report):
    path: str
    name: str
    archive: bool
    """The source is a ``.zip`` of a workspace (read from a private temporary folder)."""
    predictions: int
    """Source predictions considered (after the dataset filter)."""
    added: int
    """Predictions written into the target (to write, in a dry run), replacements included."""
    removed: int
    """Target predictions this source's predictions replace."""
    conflicts: int
    """Source predictions whose conflict key the target already held (nirs4all's ``conflicts_resolved``)."""
    kept_existing: int
    """Conflicts the target's prediction won (the source row is not written)."""
    skipped: int
    """Source rows not written for another reason (no arrays in the source)."""
    datasets: tuple[str, ...]
    bytes: int
    """Array bytes to copy, estimated from the compressed size of the source files."""
    conflict_details: tuple[MergeConflict, ...]
    conflicts_truncated: bool
    errors: tuple[str, ...]
    chains_added: int
    """Chains (with their steps and model references) copied for this source's merged predictions."""
    artifacts_added: int
    """Model files registered in the target (content already there is reused, not counted)."""
    artifact_bytes: int


@dataclass(frozen=True)
class MergeReport(Report):
    """What a merge did (or, with ``dry_run=True``, exactly what it will do)."""

    target: str
    dry_run: bool
    plan_id: str
    on_conflict: str
    datasets_filter: tuple[str, ...] | None
    sources: tuple[MergeSourceReport, ...]
    added: int
    """Predictions written into the target, replacements included."""
    removed: int
    """Target predictions replaced (deleted)."""
    conflicts: int
    kept_existing: int
    skipped: int
    datasets_merged: tuple[str, ...]
    bytes: int
    prediction_ids: tuple[str, ...]
    """Exactly the target prediction ids the merge removes."""
    predictions_before: int
    predictions_after: int
    message: str
    chains_added: int
    chains_removed: int
    """Target chains pruned because every prediction of theirs is replaced."""
    artifacts_added: int
    artifacts_removed: int
    """Target model files nirs4all's clean-up removes (no surviving or merged chain names them)."""
    artifact_bytes_added: int
    artifact_bytes_removed: int
    chain_changes: tuple[MergeChainChange, ...]
    """The chains added and removed (up to 200 of each; the counts above are exact)."""
    artifact_changes: tuple[MergeArtifactChange, ...]
    lineage_truncated: bool

