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
class MergeSourceReport(Report):
    path: str
    name: str
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

