"""The code-free studio for a lecture: ``make present`` (Voila serving notebooks/present.ipynb), driven by
headless Chromium at 1280x720, a typical projector. Opens the page, moves a slider, sees the preview change,
pins a result and checks that the preview and the controls are both on screen.

Run alone with ``make test-browser``. Leaves tests/artifacts/present-1280x720.png (look at it).
"""

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REPO, ServerProcess, free_port, settings_number

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAGE = REPO / "notebooks" / "present.ipynb"
VIEWPORT = {"width": 1280, "height": 720}


class Voila(ServerProcess):
    """``voila present.ipynb`` in its own process group on 127.0.0.1, rooted in a temp folder."""

    name = "voila"

    def __init__(self, root: Path, log_path: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, STLIB_WEIGHTS="random", STLIB_OFFLINE="1", STLIB_FAST="1",
                   JUPYTER_DATA_DIR=str(root / ".data"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
                   JUPYTER_CONFIG_DIR=str(root / ".config"))
        cmd = [sys.executable, "-m", "voila", PAGE.name, "--no-browser", f"--port={self.port}", "--Voila.ip=127.0.0.1"]
        self.start(cmd, root, env, log_path)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def ready(self) -> bool:
        socket.create_connection(("127.0.0.1", self.port), timeout=2).close()  # listening: ready
        return True

    def shutdown(self) -> None:
        """SIGTERM the process group (voila stops its kernels), SIGKILL if it lingers."""
        self.kill_group()


@pytest.fixture
def voila(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="the browser test needs the playwright Python package")
    pytest.importorskip("voila", reason="make present needs voila (pip install -e '.[dev]')")
    root = tmp_path / "present"
    root.mkdir()
    shutil.copy(PAGE, root / PAGE.name)
    server = Voila(root, tmp_path / "voila.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.shutdown()


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return found


def inside(b: dict) -> bool:
    return b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= VIEWPORT["width"] + 0.5 \
        and b["y"] + b["height"] <= VIEWPORT["height"] + 0.5


def test_code_free_studio_on_a_projector(voila):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(voila.url(), timeout=180_000)  # voila answers once the page's cell has run
            page.wait_for_selector(".stlib-studio-run", timeout=120_000)
            assert page.locator(".jp-InputArea, .jp-CodeMirrorEditor, .cm-editor").count() == 0  # no code
            # before any run: the preview shows the photo and the plot its axes, never a broken-image icon
            page.wait_for_function("""() => ['img.stlib-studio-preview', 'img.stlib-studio-loss-plot'].every(
                s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })""",
                                   timeout=30_000)
            preview, controls = box(page, "img.stlib-studio-preview"), box(page, ".stlib-studio-controls")
            assert preview["width"] >= 600 and preview["height"] >= 600, preview
            assert inside(preview) and inside(controls), (preview, controls)
            assert inside(box(page, "img.stlib-studio-loss-plot"))

            status = page.locator(".stlib-studio-status")
            page.click(".stlib-studio-run")
            page.wait_for_function("document.querySelector('.stlib-studio-status').innerText.includes('Running')",
                                   timeout=120_000)
            before = settings_number(status.inner_text())
            src_before = page.get_attribute("img.stlib-studio-preview", "src")
            handle = page.locator(".stlib-studio-style-weight .noUi-handle, .stlib-studio-style-weight .ui-slider-handle")
            handle.first.focus()
            for _ in range(2):  # "two notches": one decade
                page.keyboard.press("ArrowRight")
                time.sleep(0.15)
            page.wait_for_function(
                """([before, srcBefore]) => {
                    const found = [...document.querySelector('.stlib-studio-status').innerText
                                   .matchAll(/settings #(\\d+)/g)];
                    const img = document.querySelector('img.stlib-studio-preview');
                    return found.length && Number(found[found.length - 1][1]) > before
                        && img.src !== srcBefore && img.complete && img.naturalWidth > 0;
                }""", arg=[before, src_before], timeout=60_000)

            time.sleep(2.0)  # a few steps under the new weight, so the pinned picture shows it (not the photo)
            page.click(".stlib-studio-pin")
            page.wait_for_function("""() => { const i = document.querySelector('img.stlib-studio-pinned');
                                             return i && i.complete && i.naturalWidth > 0 && i.offsetWidth > 0; }""",
                                   timeout=30_000)
            time.sleep(1.5)  # a few more steps: the live picture moves on beside the pinned one
            for selector in ("img.stlib-studio-preview", ".stlib-studio-controls", "img.stlib-studio-pinned",
                             "img.stlib-studio-loss-plot", ".stlib-studio-run", ".stlib-studio-stop"):
                assert inside(box(page, selector)), f"{selector} is off screen at 1280x720: {box(page, selector)}"
            page.screenshot(path=str(ARTIFACTS / "present-1280x720.png"))
            page.click(".stlib-studio-stop", force=True)
            page.wait_for_function("""() => { const t = document.querySelector('.stlib-studio-status').innerText;
                                             return t.includes('Stopped') || t.includes('Done:'); }""",
                                   timeout=15_000)
            assert "Traceback" not in page.inner_text("body")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "present-failure.png"), full_page=True)
            print(voila.log_tail())
            raise
        finally:
            browser.close()
