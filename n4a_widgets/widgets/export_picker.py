"""``ExportPicker``: choose datasets and filters, export live predictions to Parquet."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import traitlets as t

from ..core.errors import InvalidArgumentError
from ..core.workspace import Workspace
from .base import WorkspaceWidget, action, bundle


def download_link(dest: str | os.PathLike[str], *, server_root: str | None = None,
                  cwd: str | os.PathLike[str] | None = None, session_name: str | None = None) -> tuple[str, str]:
    """``(path for a Jupyter files/ link, "")`` or ``("", why no link can be offered)``.

    The link is relative to the Jupyter server's root, which is usually *above*
    the notebook's folder (a server started in a project, notebooks in
    ``notebooks/``).  The page knows that root (``serverRoot`` in JupyterLab's
    and Notebook 7's page config) and tells us; without it we infer the root
    from the kernel's folder (the notebook's) and ``JPY_SESSION_NAME`` when that
    is the notebook's path relative to the root (newer servers give an
    absolute path, which says nothing about the root).
    """
    target = pathlib.Path(os.path.abspath(dest))
    here = pathlib.Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    if server_root:
        root = pathlib.Path(os.path.abspath(os.path.expanduser(server_root)))
    else:
        session = session_name if session_name is not None else os.environ.get("JPY_SESSION_NAME", "")
        root = here
        folder = pathlib.PurePosixPath(session).parent if session else pathlib.PurePosixPath()
        if session and not pathlib.PurePosixPath(session).is_absolute() and folder.parts \
                and here.parts[-len(folder.parts):] == folder.parts:
            root = pathlib.Path(*here.parts[: -len(folder.parts)])
    candidates = [(target, root)]
    if target.resolve() != target or root.resolve() != root:  # symlinks: Jupyter serves the real paths too
        candidates.append((target.resolve(), root.resolve()))
    for tgt, base in candidates:
        try:
            rel = tgt.relative_to(base)
        except ValueError:
            continue
        if any(part.startswith(".") for part in rel.parts):
            return "", (f"No download link: {tgt} is in a hidden folder, which Jupyter does not serve. "
                        "Open it from the file system, or export to a visible folder.")
        return str(pathlib.PurePosixPath(*rel.parts)), ""
    return "", (f"No download link: {target} is outside the folder this Jupyter server shares ({root}). "
                "Open it from the file system, or export under that folder to get a link.")


def download_path(dest: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
                  session_name: str | None = None, server_root: str | None = None) -> str:
    """Path of ``dest`` for a ``files/`` link, or "" when none can be offered (see ``download_link``)."""
    return download_link(dest, server_root=server_root, cwd=cwd, session_name=session_name)[0]


class ExportPicker(WorkspaceWidget):
    """Export predictions to portable Parquet: ``display(ExportPicker(path))``.

    Tick datasets (counts and sizes come from ``Workspace.health()``), pick
    optional partition / model / fold filters (values read from the
    workspace), choose a destination, press Export.  Python twins:
    ``select([...])``, ``select_all()``, ``select_none()``,
    ``set_filters(partition=..., model_name=..., fold_id=...)``,
    ``export(dest)`` (alias ``run_export``), ``wait()``.  ``report`` holds the
    ``ExportReport`` dict; ``download_path`` the output's path for a Jupyter
    ``files/`` link (relative to the server root, which the page reports in
    ``server_root``), or "" with the reason in ``download_reason``.
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
    download_reason = t.Unicode("").tag(sync=True)
    """Why there is no download link for the last export ("" when there is one)."""
    server_root = t.Unicode("").tag(sync=True)
    """The Jupyter server's root folder, as the page reports it ("" = not known)."""

    def __init__(self, workspace: str | pathlib.Path | Workspace, *, dest: str | os.PathLike[str] | None = None,
                 autoload: bool = True, **kwargs: Any) -> None:
        super().__init__(workspace, **kwargs)
        if dest is not None:
            self.dest = str(dest)
        self.observe(self._update_default_dest, names=["selected", "choices"])
        if autoload:
            self._load_now()

    # ------------------------------------------------------------ choices

    @action
    def refresh(self) -> None:
        """Re-read datasets (counts, sizes) and filter values (read-only)."""
        from ..core.export import export_choices

        ws = self.workspace
        assert ws is not None

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            progress(0.0, "Reading datasets")
            return export_choices(ws).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            names = [d["name"] for d in result["datasets"]]
            keep = [n for n in self.selected if n in names]
            self.choices = result
            self.selected = keep if keep else names

        self._run("Refresh", work, writes=False, on_result=on_result)

    def _known(self) -> list[str]:
        return [d["name"] for d in self.choices.get("datasets", [])]

    @action
    def select(self, datasets: Sequence[str] | str) -> None:
        """Tick exactly ``datasets`` (names as nirs4all knows them)."""
        names = [datasets] if isinstance(datasets, str) else list(datasets)
        known = self._known()
        unknown = [n for n in names if n not in known]
        if unknown and known:
            raise InvalidArgumentError(f"Unknown dataset: {', '.join(map(repr, unknown))}.",
                                       "Known datasets: " + ", ".join(map(repr, known)) + ".")
        self.selected = list(dict.fromkeys(names))

    @action
    def select_all(self) -> None:
        self.selected = self._known()

    @action
    def select_none(self) -> None:
        self.selected = []

    @action
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

    @action
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
        self.download_reason = ""

        def work(progress: Callable[[float, str], None], cancel: Any) -> dict[str, Any]:
            return ws.export(
                target, datasets=datasets, partition=partition, model_name=model_name, format=fmt, fold_id=fold_id,
                overwrite=replace, progress=progress, cancel=cancel,
            ).to_dict()

        def on_result(result: dict[str, Any]) -> None:
            self.report = result
            self._update_link()

        self._run("Export", work, writes=False, on_result=on_result)

    run_export = export

    @t.observe("server_root")
    def _on_server_root(self, _change: Any) -> None:
        if self.report.get("dest") and self.state == "done":
            self._update_link()

    def _update_link(self) -> None:
        path, reason = download_link(self.report["dest"], server_root=self.server_root or None)
        if self.report.get("format") == "folder" and path:
            path, reason = "", "No download link for a folder of files: open it from the file browser."
        self.download_path, self.download_reason = path, reason
