"""Every widget in JupyterLab Light and Dark: WCAG AA contrast measured from
computed styles (tests/browser/contrast.py), and a screenshot of each widget in
each theme under test-results/screenshots/ for a reviewer to open."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import gallery
from contrast import failures, measure, summary
from jlab import open_notebook, write_notebook

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def _switch_theme(page, theme: str) -> None:
    page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    deadline = time.monotonic() + 30
    while page.evaluate("() => document.body.dataset.jpThemeName") != theme:
        if time.monotonic() > deadline:
            raise TimeoutError(f"theme {theme} not applied")
        time.sleep(0.1)
    page.wait_for_timeout(500)  # the theme's stylesheet swaps in after the attribute


def test_every_widget_meets_wcag_aa_in_light_and_dark(jupyter_server, page, demo_master: Path, record_property) -> None:
    entries = gallery.entries()
    gallery.prepare(jupyter_server.root, demo_master)
    write_notebook(jupyter_server.root / "gallery.ipynb",
                   [gallery.imports()] + [f"{code}\nw" for _, code in entries])
    nb = open_notebook(page, jupyter_server.base_url, "gallery.ipynb")
    nb.run_cell(0)
    widgets = {}
    for i, (name, _) in enumerate(entries, start=1):
        nb.run_cell(i)
        root = nb.cell(i).locator(".jp-OutputArea .n4a-widget").first
        root.wait_for(state="visible")
        widgets[name] = root
    assert "Traceback" not in nb.panel.inner_text()

    bad: list[str] = []
    for theme_key, theme in THEMES.items():
        _switch_theme(page, theme)
        for name, root in widgets.items():
            root.scroll_into_view_if_needed()
            measures = measure(root)
            assert measures, name
            record_property(f"contrast-{theme_key}-{name}", summary(measures))
            print(f"[contrast] jupyterlab {theme_key:5} {name:28} {summary(measures)}")
            bad += [f"{theme} · {name}: {m}" for m in failures(measures)]
            root.screenshot(path=str(gallery.shot("jupyterlab", theme_key, name)))
    assert not bad, "WCAG AA contrast failures:\n" + "\n".join(bad)


@pytest.fixture(autouse=True)
def _light_after(jupyter_server):
    yield
    jupyter_server.set_theme("JupyterLab Light")
