"""The docs site: built with the README's command (`vlarl docs`), then every page opened in headless Chromium.

Fails on a broken link or anchor, an image that does not load, a console error or a request leaving localhost
(the site must work offline), or a formula left as TeX. Screenshots of the home page, a stage page and a page of formulas
go to $VLARL_SCREENSHOTS (figures/ to publish them; a temp folder by default)."""
import functools
import http.server
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag

import nbformat
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from browser_util import FIGURES, ROOT, launch, need_browser

pytestmark = pytest.mark.browser  # run after the other tests, alone: `make test`'s second pytest

STAGE_PAGE = "06_stage2_split_entry.html"
PLOT_PAGE = "17_viz_reward_view"  # gets an executed copy with a plotly figure and a widget
MATH_PAGES = ("21_stage3_grpo.html", "10_kinematics.html")  # the GRPO objective (VLA-World eqs. 1-2), the kinematic prior
# the article's prose: its text without code, formulas already drawn and the hidden copies of the cells' code
PROSE_JS = """a => { const c = a.cloneNode(true);
  c.querySelectorAll('pre, code, math, script, style, .clipboard-copy-txt').forEach(e => e.remove()); return c.textContent; }"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


def serve(folder: Path):
    "Serve `folder` on a free localhost port in a thread; returns the server and its base URL."
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


def executed_copy(dest: Path) -> Path:
    "An executed copy of PLOT_PAGE as a run leaves it: the view's cell shows a plotly figure and the widget itself."
    nb = nbformat.read(str(ROOT / "nbs" / f"{PLOT_PAGE}.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.rstrip().endswith("_view.widget"))
    fig = go.Figure([go.Bar(name=p, x=["ground truth", "concise", "empty"], y=[0.4, 0.2, 0.0]) for p in ("obj", "temp")], layout=dict(barmode="stack"))
    cell.outputs = [nbformat.v4.new_output("display_data", data=pio.renderers["plotly_mimetype"].to_mimebundle(fig)),
                    nbformat.v4.new_output("execute_result", execution_count=20, data={
                        "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0, "model_id": "0" * 32}, "text/plain": "VBox(...)"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}}
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest / f"{PLOT_PAGE}.ipynb"))
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site built by `vlarl docs` (with one executed notebook), served on localhost."
    tmp = tmp_path_factory.mktemp("docs")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "import sys; from vlarl.tools.cli import main; sys.exit(main())", "docs", "--nbs", str(ROOT / "nbs"), "--out", str(tmp / "site"),
                        "--executed", str(executed_copy(tmp / "executed"))], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"docs built in {time.perf_counter() - t0:.1f} s")
    srv, base = serve(tmp / "site")
    yield tmp / "site", base
    srv.shutdown()


def crawl(ctx, base: str) -> tuple[dict, list[str]]:
    "Open every page reachable from the home page; per page its ids, and every problem seen."
    problems, ids, anchors, queue, page = [], {}, [], [base + "index.html"], ctx.new_page()
    url = {"now": None}
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith((base, "data:", "blob:"))
              else (problems.append(f"{url['now']}: request leaves the site: {route.request.url}"), route.abort()))
    page.on("console", lambda m: m.type == "error" and problems.append(f"{url['now']}: console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"{url['now']}: page error: {e}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{url['now']}: HTTP {r.status} for {r.url}"))
    while queue:
        url["now"] = queue.pop(0)
        if url["now"] in ids: continue
        page.goto(url["now"], wait_until="load")
        broken = page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.getAttribute('src'))")
        problems += [f"{url['now']}: image does not load: {s}" for s in broken]
        ids[url["now"]] = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            target, frag = urldefrag(href)
            if not target.startswith(base) or target.endswith(".ipynb"): continue  # .ipynb: the notebook's download link
            if frag: anchors.append((url["now"], target, frag))
            if target not in ids: queue.append(target)
    problems += [f"{src}: broken anchor {t}#{f}" for src, t, f in anchors if t in ids and f not in ids[t]]
    page.close()
    return ids, problems


def check_formulas(page, url: str):
    "The page draws its formulas as MathML and leaves no `$…$` TeX in its prose."
    page.goto(url)
    assert page.locator("article math").count() > 0, f"{url}: no formula drawn"
    tex = re.findall(r"\$[^\s$][^$]*\$", page.eval_on_selector("article", PROSE_JS))
    assert not tex, f"{url}: formulas left as TeX: {tex[:5]}"


def test_readme_formulas_plain():
    "GitHub-style renderers show the README's text as it is: its formulas are Unicode, not TeX."
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.findall(r"\$[^\s$][^$\n]*\$|\\(?:frac|sigma|mu|beta|sum)\b", readme)


def test_docs_site_in_chromium(site, tmp_path):
    sync_playwright = need_browser()
    folder, base = site
    with sync_playwright() as p:
        ctx = launch(p, tmp_path)
        t0 = time.perf_counter()
        ids, problems = crawl(ctx, base)
        print(f"{len(ids)} pages checked in {time.perf_counter() - t0:.1f} s")
        assert not problems, "\n".join(dict.fromkeys(problems))
        nbs = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if p.stem != "index")
        missing = [n for n in nbs if base + f"{n}.html" not in ids]
        assert not missing, f"notebooks without a page reachable from the home page: {missing}"
        modules = [".".join(m.relative_to(ROOT / "vlarl").with_suffix("").parts) for m in (ROOT / "vlarl").rglob("*.py")
                   if not m.name.startswith("_")]                                   # e.g. `train.grpo`
        no_page = [m for m in modules if base + f"api/{m}.html" not in ids]
        assert not no_page, f"exported modules without an API page reachable from the home page: {no_page}"

        page = ctx.new_page()
        page.goto(base + "index.html")
        srcs = page.eval_on_selector_all("article img", "els => els.map(e => e.getAttribute('src'))")
        assert "figures/world_samples.png" in srcs and "figures/split_entry_outputs.png" in srcs, srcs
        page.screenshot(path=str(FIGURES / "docs_home.png"))

        page.goto(base + STAGE_PAGE)
        srcs = page.eval_on_selector_all("article img", "els => els.map(e => e.getAttribute('src'))")
        assert {"figures/stage2_loss.png", "figures/split_entry_outputs.png"} <= set(srcs), srcs
        page.locator("article img[src='figures/split_entry_outputs.png']").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -300)")
        page.screenshot(path=str(FIGURES / "docs_stage.png"))

        for name in MATH_PAGES: check_formulas(page, base + name)
        page.goto(base + MATH_PAGES[0])
        page.locator("article math[display=block]").first.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -250)")
        page.screenshot(path=str(FIGURES / "docs_math.png"))
        page.goto(base + "api/rewards.detect.html")  # a docstring's formula
        assert page.locator("article math").count() > 0, "a docstring's formula is not drawn"

        page.goto(base + "api/sim.html")  # the API reference: signatures and docstrings of the exported functions
        assert page.locator("[id='vlarl.sim.record_clip']").count() == 1
        assert "Simulate and label one clip in vlarl's sample schema." in page.inner_text("article")

        arabic = next(m.group(0) for m in re.finditer(r"[\u0600-\u06FF][\u0600-\u06FF ]{8,}[\u0600-\u06FF]", (ROOT / "nbs" / "11_eval_metrics.ipynb").read_text(encoding="utf-8")))
        page.goto(base + "11_eval_metrics.html")
        assert arabic in page.inner_text("article"), "Arabic text is not shown as in the notebook"

        page.goto(base + f"{PLOT_PAGE}.html")  # the executed copy: the plotly figure is drawn, the widget is a note
        page.wait_for_selector(".vlarl-plotly .main-svg .bars path", state="attached")
        assert page.locator(".vlarl-plotly .bars path").count() >= 4
        assert "open the notebook in JupyterLab" in page.inner_text("article")
        ctx.close()
