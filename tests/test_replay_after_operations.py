"""Nothing lost includes the fitted models: after each of our writes, every chain that a
surviving prediction uses still replays with ``nirs4all.predict``, giving what it gave before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from n4a_widgets import Workspace

from helpers import replay_chains

OPERATIONS: dict[str, Callable[[Workspace], Any]] = {
    "compact": lambda ws: ws.compact(dry_run=False),
    "clean_dead_links": lambda ws: ws.clean_dead_links(dry_run=False),
    "remove_bottom": lambda ws: ws.remove_bottom(0.5, partition=None, dry_run=False),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_surviving_chains_replay_identically(demo_ws: Path, operation: str) -> None:
    before = replay_chains(demo_ws)
    assert before, "the demo workspace should have replayable chains"
    report = OPERATIONS[operation](Workspace(demo_ws))
    assert report.dry_run is False
    after = replay_chains(demo_ws)  # raises if a surviving prediction's chain cannot be replayed
    assert after, "every chain lost its predictions"
    assert set(after) <= set(before)
    for chain_id, y_pred in after.items():
        np.testing.assert_array_equal(y_pred, before[chain_id], err_msg=f"{operation}: chain {chain_id} changed")
    if operation == "remove_bottom":
        assert report.removed > 0
