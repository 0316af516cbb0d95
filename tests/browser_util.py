"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright (no browser download)."""
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("VLARL_CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags Chromium keeps calling home, which a closed network answers with errors
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio"]
ROOT = Path(__file__).resolve().parents[1]
# screenshots go to a temp folder, so that a test run leaves the working tree clean; `VLARL_SCREENSHOTS=figures pytest
# tests/test_docs_site.py tests/test_jupyterlab.py` refreshes the published ones
FIGURES = Path(os.environ.get("VLARL_SCREENSHOTS") or Path(tempfile.gettempdir()) / "vlarl-screenshots")
if not FIGURES.is_absolute(): FIGURES = ROOT / FIGURES
FIGURES.mkdir(parents=True, exist_ok=True)


def need_browser():
    "Playwright's sync API; a failure naming what is missing (never a skip: `make test` installs both) otherwise."
    missing = [] if Path(CHROMIUM).exists() or shutil.which(CHROMIUM) else [f"Chromium ({CHROMIUM}; .ci/browser-deps installs it)"]
    try: from playwright.sync_api import sync_playwright
    except ImportError: missing.append("playwright (pip install -e '.[dev]')")
    if missing: pytest.fail("the browser test needs " + " and ".join(missing))
    return sync_playwright


def launch(p, tmp_path):
    "A headless Chromium with a fresh profile in `tmp_path`."
    return p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 1000})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
