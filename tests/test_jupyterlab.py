"""JupyterLab for real: start it on localhost, open the reward-view notebook in headless Chromium, run all its cells,
pick another clip in the view's dropdown and check that the plotly chart was redrawn. Screenshots before and after
the pick go to $VLARL_SCREENSHOTS (figures/ to publish them; a temp folder by default)."""
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from browser_util import FIGURES, ROOT, free_port, launch, need_browser

pytestmark = pytest.mark.browser  # run after the other tests, alone: `make test`'s second pytest

NOTEBOOK = "17_viz_reward_view.ipynb"  # ~25 s to run; its RewardView has a clip dropdown and plotly FigureWidgets
LAB_SETTINGS = {  # every cell in the DOM (no virtual scrolling), start the notebook's kernel without asking, no news
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def lab_workdir(tmp_path):
    "A copy of the project's layout (nbs/ with the notebook, figures/, settings.ini) for JupyterLab to serve."
    work = tmp_path / "work"
    (work / "nbs").mkdir(parents=True); (work / "figures").mkdir()
    nb = nbformat.read(str(ROOT / "nbs" / NOTEBOOK), as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, str(work / "nbs" / NOTEBOOK))
    shutil.copy(ROOT / "settings.ini", work)  # the notebook's last cell runs nbdev_export (into this copy)
    return work


def lab_env(tmp_path) -> dict:
    "Environment with JupyterLab's config, runtime, settings and workspaces in `tmp_path`."
    settings = tmp_path / "lab-settings"
    for path, value in LAB_SETTINGS.items():
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(json.dumps(value))
    return {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
            "SDL_VIDEODRIVER": "offscreen", "MPLBACKEND": "Agg"}


@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on a free localhost port serving a copy of the notebook; yields (base URL, token)."
    need_browser()
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={lab_workdir(tmp_path)}"],
                            env=lab_env(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 90
    while True:
        try: urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2); break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "jupyterlab.log").read_text()
            time.sleep(0.3)  # polling the server's start, not a wait for a result
    yield base, token
    proc.terminate()
    try: proc.wait(15)
    except subprocess.TimeoutExpired: proc.kill()
    log.close()


def kernel_idle(base: str, token: str) -> bool:
    "Whether the notebook's kernel has started and is idle (asked of the server's REST API)."
    sessions = json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5))
    return any(s["path"].endswith(NOTEBOOK) and s["kernel"]["execution_state"] == "idle" for s in sessions)


def test_reward_view_in_jupyterlab(lab, tmp_path):
    sync_playwright = need_browser()
    base, token = lab
    with sync_playwright() as p:
        ctx = launch(p, tmp_path)
        page, errors = ctx.new_page(), []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/lab/tree/nbs/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        deadline = time.time() + 90
        while not kernel_idle(base, token):  # a kernel dialog may still ask, depending on the saved preference
            if page.locator(".jp-Dialog .jp-mod-accept").is_visible(): page.locator(".jp-Dialog .jp-mod-accept").click()
            assert time.time() < deadline, "the notebook's kernel did not start"
            page.wait_for_timeout(250)

        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        page.wait_for_function("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(e => /\\[\\d+\\]/.test(e.textContent))",
                               timeout=180_000, polling=500)
        tracebacks = page.eval_on_selector_all(".jp-OutputArea-output", "els => els.map(e => e.textContent).filter(t => t.includes('Traceback'))")
        assert not tracebacks, tracebacks[0][:2000]

        view = page.locator(".jp-OutputArea-output:has(.widget-dropdown)").first
        page.wait_for_selector(".jp-OutputArea-output .js-plotly-plot .bars path", state="attached", timeout=120_000)
        page.keyboard.press("Control+b")  # hide the file browser: more room for the view
        view.scroll_into_view_if_needed()
        chart = page.locator(".jp-OutputArea-output .js-plotly-plot").first
        before = chart.evaluate("e => e.querySelector('.main-svg').innerHTML")
        clip = page.locator(".widget-dropdown select").first
        options = clip.evaluate("s => [...s.options].map(o => o.textContent)")
        old = clip.input_value()
        page.screenshot(path=str(FIGURES / "jupyterlab_reward_view_before.png"))

        new = next(o for o in options if o.split("-")[1] != old.split("-")[1])  # a clip of another scenario
        clip.select_option(label=new)
        page.wait_for_function("b => document.querySelector('.jp-OutputArea-output .js-plotly-plot .main-svg').innerHTML !== b", arg=before, timeout=30_000)
        page.wait_for_function("n => document.querySelector('.jp-OutputArea-output .widget-html-content').textContent.includes(n)",
                               arg=new.split("-")[1], timeout=30_000)  # the info box names the new clip's scenario
        after = chart.evaluate("e => e.querySelector('.main-svg').innerHTML")
        assert after != before
        page.screenshot(path=str(FIGURES / "jupyterlab_reward_view_after.png"))
        assert not errors, errors
        ctx.close()
