"""Shared fixtures: real workspaces made by real ``nirs4all.run`` calls.

Building a workspace takes seconds, so each kind is built once per session
and every test gets its own copy (``shutil.copytree``) to read or mutate.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import LEGACY_FIXTURES


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace (3 datasets, regression + classification, 4 pending deletes). Do not modify."""
    from n4a_widgets.demo import build_demo_workspace

    return build_demo_workspace(tmp_path_factory.mktemp("master") / "demo_ws")


@pytest.fixture
def demo_ws(demo_master: Path, tmp_path: Path) -> Path:
    """A private copy of the demo workspace, free to modify."""
    target = tmp_path / "ws"
    shutil.copytree(demo_master, target)
    return target


@pytest.fixture(scope="session")
def small_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One regression dataset, one run, no deletes. Do not modify."""
    from n4a_widgets.demo import run_dataset

    ws = tmp_path_factory.mktemp("small") / "small_ws"
    run_dataset(ws, "synthetic_regression", "regression", 120, 0, n_models=1)
    return ws


@pytest.fixture
def small_ws(small_master: Path, tmp_path: Path) -> Path:
    target = tmp_path / "small"
    shutil.copytree(small_master, target)
    return target


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Path]:
    """Build a custom workspace: ``make_workspace("name", [(dataset, task, n, seed), ...])``."""
    from n4a_widgets.demo import run_dataset

    def build(name: str, datasets: list[tuple[str, str, int, int]], n_models: int = 1) -> Path:
        ws = tmp_path / name
        for ds, task, n, seed in datasets:
            run_dataset(ws, ds, task, n, seed, n_models=n_models)
        return ws

    return build


def legacy_names() -> list[str]:
    if not LEGACY_FIXTURES.is_dir():
        return []
    return sorted(p.name for p in LEGACY_FIXTURES.iterdir() if p.is_dir())


@pytest.fixture
def legacy_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a committed legacy fixture (made by a real old release) into tmp."""

    def copy(name: str) -> Path:
        source = LEGACY_FIXTURES / name
        if not source.is_dir():
            pytest.fail(f"legacy fixture {name} is missing (tests/fixtures/make_legacy_fixtures.py builds it)")
        target = tmp_path / "legacy" / name
        shutil.copytree(source, target)
        return target

    return copy
