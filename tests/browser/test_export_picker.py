"""ExportPicker in real JupyterLab + headless Chromium: tick, filter, Export, download link."""

from __future__ import annotations

from pathlib import Path

from jlab import show_widget


def test_export_picker_in_jupyterlab(jupyter_server, page, demo_master: Path, served_copy) -> None:
    import polars as pl

    ws_rel = served_copy(demo_master, "ws_export")
    out = jupyter_server.root / "tablets val.parquet"
    out.unlink(missing_ok=True)
    nb, widget = show_widget(page, jupyter_server, "export.ipynb", [
        f"from n4a_widgets import ExportPicker\nw = ExportPicker({ws_rel!r})\nw",
        "print('WAITED', w.wait(60), w.state, w.report.get('total_rows'), repr(w.download_path))",
    ], "n4a-export-picker")
    boxes = widget.locator("input[data-dataset]")
    boxes.first.wait_for()
    assert boxes.count() == 3
    assert "4 pending deletes" in widget.locator("[data-section=datasets]").inner_text()

    # Tick only "tablets", filter partition=val, name the file, Export.
    widget.locator("button[data-action=select_none]").click()
    widget.locator("input[data-dataset='tablets']").check()
    widget.locator("select[data-filter=partition]").select_option("val")
    dest = widget.locator("input[data-field=dest]")
    dest.fill(str(out))
    dest.press("Tab")
    widget.locator("button[data-action=export]").click()
    widget.locator("[data-result=done]").wait_for(timeout=60_000)

    printed = nb.run_python(1)
    assert "WAITED True done" in printed and "'tablets val.parquet'" in printed
    frame = pl.read_parquet(out)
    assert set(frame["partition"]) == {"val"} and set(frame["dataset_name"]) == {"tablets"}
    assert f"Exported {frame.height} predictions" in widget.locator("[data-result]").inner_text()

    link = widget.locator("a[data-link=download]")
    href = link.get_attribute("href")
    assert href is not None and href.endswith("files/tablets%20val.parquet")
    response = page.request.get(jupyter_server.base_url.rstrip("/") + href)  # the link JupyterLab serves
    assert response.ok and response.body()[:4] == b"PAR1"

    # Exporting again without overwrite shows the error area, the file stays.
    widget.locator("button[data-action=export]").click()
    widget.locator(".n4a-error").filter(has_text="already exists").wait_for()
    assert pl.read_parquet(out).height == frame.height
