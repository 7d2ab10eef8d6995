"""Real browsers for the view tests: JupyterLab 4 or Notebook 7 on a loopback port, Debian's Chromium
driven by playwright (never a downloaded browser), and a few in-page measurements.

- ``JupyterServer``: a server in its own config, runtime and settings dirs (theme chosen per page
  load by rewriting the user setting; announcements and news off), stopped by its own process id.
- ``chromium(profile)``: a persistent Chromium context with the flags this machine needs.
- ``run_all``, ``wait_idle``, ``save``: drive a notebook page through its menus.
- ``FRAME_GAPS_JS``, ``CONTRAST_JS``: requestAnimationFrame gaps, and the lowest text contrast
  inside an element (WCAG ratio, with opacity and the real background behind each text).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


class JupyterServer:
    """``python -m jupyterlab`` or ``python -m notebook`` serving ``work``; ``url(path)`` opens a notebook."""

    def __init__(self, app: str, tmp: Path):
        assert os.path.exists(CHROMIUM), "the browser tests need Debian's chromium: apt-get install chromium"
        self.app, self.tmp = app, tmp
        self.config, self.runtime, self.work = tmp / "config", tmp / "runtime", tmp / "work"
        self.settings = self.config / "lab" / "user-settings"
        for d in (self.config / "labconfig", self.runtime, self.work, self.settings):
            d.mkdir(parents=True, exist_ok=True)
        (self.config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        self._setting("@jupyterlab/apputils-extension", "notification", {"fetchNews": "false"})
        self.theme("light")
        self.port, self.token = free_port(), "apflow-test-token"
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def _setting(self, plugin: str, name: str, value: dict[str, Any]) -> None:
        folder = self.settings / plugin
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(value))

    def theme(self, which: str) -> None:
        """The theme the next page load uses (the settings API reads the file on each load)."""
        self._setting("@jupyterlab/apputils-extension", "themes", {"theme": THEMES[which]})

    def start(self) -> "JupyterServer":
        module = "jupyterlab" if self.app == "lab" else "notebook"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.config), JUPYTER_RUNTIME_DIR=str(self.runtime),
                   JUPYTERLAB_SETTINGS_DIR=str(self.settings), PYDEVD_DISABLE_FILE_VALIDATION="1")
        env.pop("APFLOW_NB_DISPLAY", None)
        if os.environ.get("APFLOW_SRC"): env["PYTHONPATH"] = os.environ["APFLOW_SRC"]
        self.log = open(self.tmp / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--no-browser", "--allow-root", f"--port={self.port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.work}"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{module} did not start: " + (self.tmp / "server.log").read_text()[-2000:])
            time.sleep(0.3)

    def url(self, notebook: str) -> str:
        """The notebook's page; JupyterLab's saved workspace (other notebooks' tabs) is reset."""
        if self.app == "lab":
            return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"
        return f"{self.base}/notebooks/{notebook}?token={self.token}"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.base}{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> int:
        """Shut every kernel down through the REST API (as the Kernel menu does); how many there were."""
        kernels = self.api("GET", "/api/kernels")
        for k in kernels:
            self.api("DELETE", f"/api/kernels/{k['id']}")
        return len(kernels)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(Exception):
            self.log.close()


@contextlib.contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[Any]:
    """A persistent Chromium context (1400x1000) with this machine's flags; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1400, "height": 1000},
                                                       **options)
        try:
            yield context
        finally:
            context.close()


def wait_idle(page: Any, server: "JupyterServer | None" = None, notebook: str | None = None,
              timeout: float = 60_000) -> None:
    """Until the notebook's kernel runs and is idle: its session exists on the server (when given)
    and the page's execution indicator (JupyterLab and Notebook 7 alike) says idle."""
    if server is not None and notebook is not None:
        deadline = time.monotonic() + timeout / 1000
        while not any(s["path"].endswith(notebook) and s["kernel"]["execution_state"] == "idle"
                      for s in server.api("GET", "/api/sessions")):
            assert time.monotonic() < deadline, f"no idle kernel for {notebook}"
            time.sleep(0.2)
    page.wait_for_function("""() => { const el = document.querySelector('.jp-Notebook-ExecutionIndicator');
        return !!el && el.getAttribute('data-status') === 'idle'; }""", timeout=timeout)


def run_all(page: Any) -> None:
    """Run → Run All Cells (the same menu in JupyterLab and Notebook 7)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def save(page: Any) -> None:
    """File → Save (Notebook), and wait for the notebook to be clean again."""
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=20_000)


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


FRAME_GAPS_START_JS = """() => {
    window.__gaps = []; window.__gapsOn = true;
    let last = performance.now();
    const tick = (t) => { window.__gaps.push(t - last); last = t; if (window.__gapsOn) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
}"""

FRAME_GAPS_STOP_JS = """() => {
    window.__gapsOn = false;
    const g = window.__gaps.slice(1).sort((a, b) => a - b);
    const at = (q) => g[Math.min(g.length - 1, Math.floor(q * g.length))];
    return {count: g.length, median: at(0.5), p95: at(0.95), p99: at(0.99), max: g[g.length - 1]};
}"""

CONTRAST_JS = """(root) => {
    const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
        const p = m[1].split(',').map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
    const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
    const over = (top, bottom) => { const a = top[3];
        return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]); };
    const background = (el) => { const layers = [];
        for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
            if (c[3] > 0) layers.push(c); if (c[3] >= 1) break; }
        let bg = [255, 255, 255, 1];
        for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
        return bg; };
    const opacity = (el) => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
    let worst = {ratio: 99, text: '', color: '', bg: ''};
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const text = n.textContent.trim(); const el = n.parentElement;
        if (!text || !el || !el.getClientRects().length) continue;
        const bg = background(el); const fg = parse(getComputedStyle(el).color);
        fg[3] *= opacity(el);
        const shown = over(fg, bg);
        const [a, b] = [lum(shown), lum(bg)];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < worst.ratio) worst = {ratio, text: text.slice(0, 60), color: getComputedStyle(el).color,
                                          bg: 'rgb(' + bg.slice(0, 3).map(Math.round).join(',') + ')'};
    }
    return worst;
}"""
