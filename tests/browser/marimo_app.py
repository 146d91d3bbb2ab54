"""Serve a marimo notebook with ``marimo run`` on a free localhost port.

marimo displays anywidgets through ``mo.ui.anywidget(w)`` inside a shadow root
(Playwright's CSS locators pierce it).  The server reads its user config from
``$XDG_CONFIG_HOME/marimo/marimo.toml``: the theme is "system", so the page
follows the browser's ``prefers-color-scheme`` (``page.emulate_media``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARIMO = Path(sys.executable).with_name("marimo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_app(path: Path, cells: list[str]) -> Path:
    """A marimo notebook: one cell per widget-building snippet (which leaves it in ``w``).

    Each snippet runs in a function so names never clash across cells (marimo
    refuses a name defined in two cells); the cell shows ``mo.ui.anywidget(w)``.
    """
    out = ["import marimo", "", "app = marimo.App(width='full')", "", "",
           "@app.cell", "def _():", "    import marimo as mo", "    return (mo,)", ""]
    for code in cells:
        body = textwrap.indent(code + "\nreturn w", " " * 8)
        out += ["", "@app.cell", "def _(mo):", "    def _make():", body,
                "    _view = mo.ui.anywidget(_make())", "    _view", "    return", ""]
    out += ["", 'if __name__ == "__main__":', "    app.run()", ""]
    path.write_text("\n".join(out))
    return path


@contextmanager
def marimo_run(notebook: Path, port: int, home: Path) -> Iterator[str]:
    """``marimo run --headless`` on ``notebook`` (cwd: its folder); yields the base URL; stops it after."""
    (home / "marimo").mkdir(parents=True, exist_ok=True)
    (home / "marimo" / "marimo.toml").write_text('[display]\ntheme = "system"\n')
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "MARIMO_SKIP_UPDATE_CHECK": "1"}
    log = home / "marimo.log"
    cmd = [str(MARIMO), "run", "--headless", "--no-token", "--host", "127.0.0.1", "--port", str(port), notebook.name]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=notebook.parent, env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("marimo did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
