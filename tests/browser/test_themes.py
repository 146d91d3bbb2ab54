"""Every widget in JupyterLab Light and Dark: WCAG AA contrast measured from
computed styles (tests/browser/contrast.py), and a screenshot of each widget in
each theme under test-results/screenshots/ for a reviewer to open."""

from __future__ import annotations

from pathlib import Path

import pytest

import gallery
from contrast import failures, measure, summary
from jlab import THEMES, open_notebook, switch_theme, write_notebook


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
        switch_theme(page, theme)
        for name, root in widgets.items():
            root.scroll_into_view_if_needed()
            measures = measure(root)
            assert measures, name
            record_property(f"contrast-{theme_key}-{name}", summary(measures))
            print(f"[contrast] jupyterlab {theme_key:5} {name:28} {summary(measures)}")
            bad += [f"{theme} · {name}: {m}" for m in failures(measures)]
            gallery.screenshot(page, root, gallery.shot("jupyterlab", theme_key, name))
    assert not bad, "WCAG AA contrast failures:\n" + "\n".join(bad)


@pytest.fixture(autouse=True)
def _light_after(jupyter_server):
    yield
    jupyter_server.set_theme("JupyterLab Light")
