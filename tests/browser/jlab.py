"""Drive a real JupyterLab page from Playwright: write a notebook, open it,
wait for a live kernel, run cells, read outputs.

Lessons encoded here: the toolbar's idle indicator is not
proof that a kernel exists, so we wait on the session's kernel object; a cell
is run by clicking its editor and pressing Shift+Enter; notebooks carry a
kernelspec so no "Select Kernel" dialog blocks the page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
            for src in cells
        ],
        "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return path


ACTIVE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"

KERNEL_STATE_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? [k.connectionStatus, k.status] : null;
}"""


@dataclass
class NotebookPage:
    page: Any
    timeout_ms: int = 120_000

    def wait_kernel_idle(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.page.evaluate(KERNEL_STATE_JS)
            if state == ["connected", "idle"]:
                return
            time.sleep(0.1)
        raise TimeoutError(f"kernel not idle: {self.page.evaluate(KERNEL_STATE_JS)}")

    @property
    def panel(self) -> Any:
        """The notebook in front (other restored tabs stay hidden in the DOM)."""
        return self.page.locator(ACTIVE_NOTEBOOK)

    def cell(self, index: int) -> Any:
        return self.panel.locator(".jp-Cell").nth(index)

    def widget(self, css_class: str, cell: int = 0) -> Any:
        """The widget root ``.<css_class>`` in the output of ``cell``."""
        return self.cell(cell).locator(f".jp-OutputArea .{css_class}")

    def run_cell(self, index: int, timeout_s: float = 120) -> Any:
        """Run cell ``index`` and wait until the kernel is idle again; returns its output area."""
        cell = self.cell(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")
        # Wait until the prompt shows an execution count (not "[ ]" / "[*]").
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            prompt = cell.locator(".jp-InputArea-prompt").inner_text()
            if "[*]" not in prompt and any(ch.isdigit() for ch in prompt):
                break
            time.sleep(0.1)
        else:
            raise TimeoutError(f"cell {index} did not finish: {prompt!r}")
        self.wait_kernel_idle(timeout_s)
        return cell.locator(".jp-OutputArea")

    def output_text(self, index: int) -> str:
        return self.cell(index).locator(".jp-OutputArea").inner_text()

    def run_python(self, index: int) -> str:
        """Run a cell that prints something and return its text output."""
        self.run_cell(index)
        return self.output_text(index)


def open_notebook(page: Any, base_url: str, relpath: str) -> NotebookPage:
    # ?reset: do not restore tabs of earlier tests from the saved workspace.
    page.goto(f"{base_url}lab/tree/{relpath}?reset", wait_until="domcontentloaded")
    page.wait_for_selector(f"{ACTIVE_NOTEBOOK} .jp-Cell", timeout=120_000)
    nb = NotebookPage(page)
    nb.wait_kernel_idle()
    return nb


def show_widget(page: Any, server: Any, name: str, cells: list[str], css_class: str) -> tuple[NotebookPage, Any]:
    """Write notebook ``name`` under the server root, open it, run its first
    cell (which displays a widget) and return the page and the visible widget root."""
    write_notebook(server.root / name, cells)
    nb = open_notebook(page, server.base_url, name)
    nb.run_cell(0)
    widget = nb.widget(css_class)
    widget.wait_for(state="visible")
    return nb, widget


THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def switch_theme(page, theme: str) -> None:
    """Switch a JupyterLab or Notebook 7 page's theme live (the command also saves the setting)."""
    page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    deadline = time.monotonic() + 30
    while page.evaluate("() => document.body.dataset.jpThemeName") != theme:
        if time.monotonic() > deadline:
            raise TimeoutError(f"theme {theme} not applied")
        time.sleep(0.1)
    page.wait_for_timeout(500)  # the theme's stylesheet swaps in after the attribute
