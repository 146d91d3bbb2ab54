"""Maintenance: compact, clean dead links, remove the bottom fraction.

One module per operation, each a ``WriteOperation`` run by ``run_write``
(core/write_op.py): ``compact``, ``clean_dead_links``, ``remove_bottom``;
``batch_delete`` is their shared batched delete through nirs4all, ``choices``
the read-only questions of the MaintenancePanel, ``reports`` the reports.
"""

from ..errors import WorkspaceError
from .choices import maintenance_choices, score_distribution
from .clean_dead_links import CleanDeadLinks, clean_dead_links
from .compact import Compact, compact
from .remove_bottom import RemoveBottom, remove_bottom
from .reports import (
    BATCH_SIZE,
    EXECUTION_ONLY_FIELDS,
    SCORE_COLUMNS,
    CleanDeadLinksReport,
    CompactReport,
    DatasetCompaction,
    DatasetCut,
    DatasetOrphans,
    MaintenanceChoices,
    MetricGroupCut,
    RemoveBottomReport,
    ScoreDistribution,
    ScoreGroup,
)

__all__ = [
    "BATCH_SIZE",
    "EXECUTION_ONLY_FIELDS",
    "SCORE_COLUMNS",
    "CleanDeadLinks",
    "CleanDeadLinksReport",
    "Compact",
    "CompactReport",
    "DatasetCompaction",
    "DatasetCut",
    "DatasetOrphans",
    "MaintenanceChoices",
    "MetricGroupCut",
    "RemoveBottom",
    "RemoveBottomReport",
    "ScoreDistribution",
    "ScoreGroup",
    "WorkspaceError",
    "clean_dead_links",
    "compact",
    "maintenance_choices",
    "remove_bottom",
    "score_distribution",
]
