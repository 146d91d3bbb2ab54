"""Issue 16 (messages): what a widget shows speaks widget, not API, and never shows a class name."""

from __future__ import annotations

from pathlib import Path

from n4a_widgets import ExportPicker
from n4a_widgets.core import errors as E
from n4a_widgets.widgets.messages import user_error, widget_hint


def test_hints_use_widget_words() -> None:
    hint = "Pick another name, or pass overwrite=True (--overwrite) to replace it."
    assert widget_hint(hint, "ExportPicker") == "Pick another name, or tick Overwrite to replace it."
    busy = ("The recorded holder (pid 7) no longer exists; if you are sure no job is running, "
            "retry with force=True (CLI: --force) to take over the lock.")
    assert "force=True (CLI" not in widget_hint(busy, "MaintenancePanel")
    assert "(or `python -m" not in widget_hint(E.UnsupportedFormatError.default_hint, "MergeStores")


def test_every_error_has_a_title_without_class_names() -> None:
    for klass in (E.OperationCancelledError, E.InvalidArgumentError, E.WorkspaceBusyError, E.PlanChangedError,
                  E.QueryRejectedError, E.MigrationError, E.UnsupportedFormatError, E.WorkspaceError):
        shown = user_error(klass("Something happened."), "StorageHealth")
        assert shown["type"] == klass.__name__  # for code
        assert shown["title"] and "Error" not in shown["title"]  # for people
    crash = user_error(RuntimeError("boom"))
    assert crash["title"] == "Something went wrong" and crash["type"] == "RuntimeError"


def test_export_over_an_existing_file_says_tick_overwrite(demo_ws: Path, tmp_path: Path) -> None:
    w = ExportPicker(demo_ws)
    assert w.wait(60)
    w.select(["tablets"])
    w.export(tmp_path / "t.parquet")
    assert w.wait(60) and w.state == "done", w.error
    w.export(tmp_path / "t.parquet")
    assert w.wait(60) and w.state == "error"
    assert "tick Overwrite" in w.error["hint"] and "overwrite=True" not in w.error["hint"]
    assert w.error["title"] == "Cannot do that"
