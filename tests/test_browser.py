"""The studio in a real JupyterLab, driven by headless Chromium (Playwright): run notebook 05, start a run,
move the style-weight slider with the keyboard and check that the preview follows the new settings.

Run alone with ``make test-browser`` (``pytest -m browser``). Needs Debian's /usr/bin/chromium (Playwright's
own browser downloads do not work offline) and a kernelspec that runs this venv's Python (``python3`` in
``<venv>/share/jupyter/kernels``; ``python -m ipykernel install --sys-prefix`` makes one).
Leaves a screenshot of the studio in tests/artifacts/studio.png.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "05_studio.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server started in its own process group, its output in a log file; subclasses say how to probe it."""

    name = "server"

    def start(self, cmd: list, root: Path, env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def ready(self) -> bool:
        """True once the server answers (an OSError means: not yet)."""
        raise NotImplementedError

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill_group(self, wait_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers; close the log."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()


class Lab(ServerProcess):
    """A JupyterLab server in its own process group, on 127.0.0.1 with a token, rooted in a temp folder."""

    name = "jupyter lab"

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.port, self.token = free_port(), secrets.token_hex(16)
        settings = root / ".lab-settings"
        notify = settings / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True)
        # no "Would you like to get Jupyter news?" pop-up, no update check (both would reach the internet)
        (notify / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        # An empty per-user data dir: a user-level "python3" kernelspec (which would shadow the venv's) is ignored,
        # so the kernel is the venv's ipykernel ("python" in its kernel.json means the server's own Python).
        env = dict(os.environ, STLIB_WEIGHTS="random", STLIB_OFFLINE="1", STLIB_FAST="1",
                   JUPYTER_DATA_DIR=str(root / ".data"),
                   JUPYTER_RUNTIME_DIR=str(root / ".runtime"), JUPYTER_CONFIG_DIR=str(root / ".config"),
                   JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"))
        cmd = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI containers often run as root
        self.start(cmd, root, env, log_path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def ready(self) -> bool:
        with urllib.request.urlopen(self.url("/api/status"), timeout=2) as response:
            return response.status == 200

    def shutdown(self) -> None:
        """Ask the server to shut down (it stops its kernels); kill the process group if it lingers."""
        if self.proc.poll() is None:
            try:
                request = urllib.request.Request(self.url("/api/shutdown"), method="POST")
                urllib.request.urlopen(request, timeout=5).close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group(wait_s=5)


@pytest.fixture
def lab(tmp_path):
    """A running JupyterLab whose root holds a copy of notebook 05; always shut down afterwards."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright Python package")
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    server = Lab(root, tmp_path / "jupyter.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.shutdown()


def settings_number(status_text: str) -> int:
    """The settings generation the status line reports ("settings #3"), or -1."""
    found = re.findall(r"settings #(\d+)", status_text)
    return int(found[-1]) if found else -1


def test_studio_retargets_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(lab.url(f"/lab/tree/{NOTEBOOK.name}"))
            page.wait_for_function("document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length >= 4",
                                   timeout=60_000)
            page.wait_for_function("document.body.innerText.includes('| Idle')", timeout=60_000)  # kernel up

            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            studio = page.locator(".jp-OutputArea-output").filter(has=page.locator(".stlib-studio-run"))
            studio.wait_for(timeout=90_000)
            status = page.locator(".stlib-studio-status")
            # the notebook's own cells run the studio and a sweep; wait for them to finish
            page.wait_for_function(
                "document.querySelector('.stlib-studio-status')?.innerText.includes('Sweep done')", timeout=90_000)
            assert "Traceback" not in page.inner_text(".jp-NotebookPanel")

            studio.scroll_into_view_if_needed()
            page.click(".stlib-studio-run")
            page.wait_for_function("document.querySelector('.stlib-studio-status').innerText.includes('Running')",
                                   timeout=60_000)
            before = settings_number(status.inner_text())
            src_before = page.get_attribute("img.stlib-studio-preview", "src")

            handle = page.locator(".stlib-studio-style-weight .noUi-handle, .stlib-studio-style-weight .ui-slider-handle")
            handle.first.focus()  # ipywidgets 8 (noUiSlider) and 7 (jQuery UI) both move on arrow keys
            for _ in range(3):
                page.keyboard.press("ArrowRight")
                time.sleep(0.15)

            page.wait_for_function(
                """([before, srcBefore]) => {
                    const status = document.querySelector('.stlib-studio-status').innerText;
                    const found = [...status.matchAll(/settings #(\\d+)/g)];
                    const img = document.querySelector('img.stlib-studio-preview');
                    return found.length && Number(found[found.length - 1][1]) > before
                        && status.includes('Running') && img.src && img.src !== srcBefore
                        && img.complete && img.naturalWidth > 0;
                }""",
                arg=[before, src_before], timeout=60_000,
            )
            after_text = status.inner_text()
            assert settings_number(after_text) > before, after_text
            natural = page.evaluate("document.querySelector('img.stlib-studio-preview').naturalWidth")
            assert natural > 0
            time.sleep(1.0)  # a few more steps, so the loss plot has something to show
            studio.screenshot(path=str(ARTIFACTS / "studio.png"))

            # force: the short fast-mode run may already be done, and then the Stop button is disabled
            page.click(".stlib-studio-stop", force=True)
            # On an idle machine the short fast-mode run may already have finished ("Done: ...") before the
            # click lands; either way the worker must end promptly and say so (Stop itself: test_studio.py).
            page.wait_for_function(
                """() => { const t = document.querySelector('.stlib-studio-status').innerText;
                           return t.includes('Stopped') || t.includes('Done:'); }""",
                timeout=10_000)

            # The Sweep tab: the notebook computed a sweep; its "show cell" slider flips between cached PNGs.
            studio.locator(".lm-TabBar-tab, .p-TabBar-tab").filter(has_text="Sweep").first.click()
            sweep_src = page.get_attribute("img.stlib-studio-sweep-image", "src")
            page.locator(".stlib-studio-sweep-pick .noUi-handle, .stlib-studio-sweep-pick .ui-slider-handle").first.focus()
            page.keyboard.press("Home")  # first cell
            page.wait_for_function(
                """(src) => { const img = document.querySelector('img.stlib-studio-sweep-image');
                              return img.src !== src && img.complete && img.naturalWidth > 0; }""",
                arg=sweep_src, timeout=10_000)
            studio.screenshot(path=str(ARTIFACTS / "studio-sweep.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "studio-failure.png"), full_page=True)
            print(lab.log_tail())
            raise
        finally:
            browser.close()
