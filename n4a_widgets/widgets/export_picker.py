"""``ExportPicker``: choose datasets and filters, export live predictions to Parquet."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, bundle


def download_path(dest: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
                  session_name: str | None = None) -> str:
    """Path of ``dest`` for a JupyterLab ``files/`` link, or "" when it is outside the kernel's folder.

    The kernel's working directory is the notebook's folder.  Jupyter tells
    the kernel the notebook's path relative to the server root in
    ``JPY_SESSION_NAME``; when it is there we prefix the notebook's folder so
    the link also works for notebooks in subfolders.
    """
    here = pathlib.Path(cwd if cwd is not None else os.getcwd()).resolve()
    target = pathlib.Path(dest).resolve()
    try:
        rel = target.relative_to(here)
    except ValueError:
        return ""
    session = session_name if session_name is not None else os.environ.get("JPY_SESSION_NAME", "")
    prefix = pathlib.PurePosixPath()
    if session and not pathlib.PurePosixPath(session).is_absolute():
        folder = pathlib.PurePosixPath(session).parent
        if folder.parts and here.parts[-len(folder.parts):] == folder.parts:
            prefix = folder
    return str(prefix / pathlib.PurePosixPath(*rel.parts))


class ExportPicker(WorkspaceWidget):
    """Export predictions to portable Parquet: ``display(ExportPicker(path))``.

    Tick datasets (counts and sizes come from ``Workspace.health()``), pick
    optional partition / model / fold filters (values read from the
    workspace), choose a destination, press Export.  Python twins:
    ``select([...])``, ``select_all()``, ``select_none()``,
    ``set_filters(partition=..., model_name=..., fold_id=...)``,
    ``export(dest)`` (alias ``run_export``), ``wait()``.  ``report`` holds the
    ``ExportReport`` dict; ``download_path`` a path for a ``files/`` link when
    the output lies under the notebook's folder.
    """

    _esm = bundle("export_picker")

    choices = t.Dict().tag(sync=True)
    """{"datasets": [{name, prediction_count, parquet_size_bytes, pending_tombstones}],
    "partitions", "models", "folds"}"""
    selected = t.List(t.Unicode()).tag(sync=True)
    partition = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    fold_id = t.Unicode("").tag(sync=True)
    dest = t.Unicode("").tag(sync=True)
    default_dest = t.Unicode("").tag(sync=True)
    export_format = t.Unicode("auto").tag(sync=True)
    overwrite = t.Bool(False).tag(sync=True)
    download_path = t.Unicode("").tag(sync=True)

    def __init__(self, workspace: str | pathlib.Path | Workspace, *, dest: str | os.PathLike[str] | None = None,
                 autoload: bool = True, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        if dest is not None:
            self.dest = str(dest)
        self.observe(self._update_default_dest, names=["selected", "choices"])
        if autoload:
            self._load_now()

    def _actions(self) -> dict[str, Callable[..., Any]]:
        return {
            **super()._actions(), "refresh": self.refresh, "export": self.export, "select": self.select,
            "select_all": self.select_all, "select_none": self.select_none, "set_filters": self.set_filters,
        }

    # ------------------------------------------------------------ choices

    def refresh(self) -> None:
        """Re-read datasets (counts, sizes) and filter values (read-only)."""
        from ..core.export import export_choices

        ws = self.workspace
        assert ws is not None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading datasets")
            return export_choices(ws.path).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            names = [d["name"] for d in result["datasets"]]
            keep = [n for n in self.selected if n in names]
            self.choices = result
            self.selected = keep if keep else names

        self._run("Refresh", work, writes=False, on_result=on_result)

    def _known(self) -> list[str]:
        return [d["name"] for d in self.choices.get("datasets", [])]

    def select(self, datasets: Sequence[str] | str) -> None:
        """Tick exactly ``datasets`` (names as nirs4all knows them)."""
        names = [datasets] if isinstance(datasets, str) else list(datasets)
        known = self._known()
        unknown = [n for n in names if n not in known]
        if unknown and known:
            raise InvalidArgumentError(f"Unknown dataset: {', '.join(map(repr, unknown))}.",
                                       "Known datasets: " + ", ".join(map(repr, known)) + ".")
        self.selected = list(dict.fromkeys(names))

    def select_all(self) -> None:
        self.selected = self._known()

    def select_none(self) -> None:
        self.selected = []

    def set_filters(self, partition: str | None = None, model_name: str | None = None,
                    fold_id: str | None = None) -> None:
        """Set the filters (``None`` or "" = no filter)."""
        self.partition = partition or ""
        self.model_name = model_name or ""
        self.fold_id = fold_id or ""

    def _update_default_dest(self, _change: Any = None) -> None:
        from ..core.export import safe_file_stem

        ws_name = safe_file_stem(self.workspace.path.name) if self.workspace is not None else "workspace"
        if len(self.selected) == 1:
            name = safe_file_stem(self.selected[0]) + ".parquet"
        else:
            name = f"{ws_name}_predictions.zip"
        self.default_dest = str(pathlib.Path(os.getcwd()) / name)

    # ------------------------------------------------------------- export

    def export(self, dest: str | os.PathLike[str] | None = None, format: str | None = None,
               overwrite: bool | None = None) -> None:
        """Start the export of the ticked datasets with the current filters (the Export button)."""
        ws = self.workspace
        assert ws is not None
        if dest is not None and str(dest):
            self.dest = str(dest)
        if format is not None:
            self.export_format = format
        if overwrite is not None:
            self.overwrite = bool(overwrite)
        if not self.selected:
            raise InvalidArgumentError("No dataset is selected.", "Tick at least one dataset, then Export.")
        self._update_default_dest()
        target = self.dest or self.default_dest
        datasets = list(self.selected)
        partition, model_name, fold_id = self.partition or None, self.model_name or None, self.fold_id or None
        fmt, replace = self.export_format or "auto", bool(self.overwrite)
        self.download_path = ""

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.export(
                target, datasets=datasets, partition=partition, model_name=model_name, format=fmt, fold_id=fold_id,
                overwrite=replace, progress=progress, cancel=cancel,
            ).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            self.report = result
            self.download_path = download_path(result["dest"])

        self._run("Export", work, writes=False, on_result=on_result)

    run_export = export
