"""README.md is generated from nbs/index.ipynb and the published run's results/, and must not drift from either."""
import json
import re
from pathlib import Path

from vlarl.tools.cli import QUOTED_METRIC, RESULTS_MARKER, quote_metrics, readme_text, results_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_readme_matches_index_notebook_and_results():
    expected = readme_text(ROOT / "nbs" / "index.ipynb", ROOT / "results")
    assert (ROOT / "README.md").read_text(encoding="utf-8") == expected, "README.md is out of date: run `vlarl readme`"


def test_readme_tables_are_the_published_runs_metrics():
    "The results section is in the README, names its run, and shows the published stage-2 losses."
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert RESULTS_MARKER in (ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8")
    section = results_markdown(ROOT / "results")
    assert section.strip() in text
    source = json.loads((ROOT / "results" / "SOURCE.json").read_text(encoding="utf-8"))
    assert f"`{source['run']}`" in section
    s2 = json.loads((ROOT / "results" / "metrics" / "stage2_split_entry.json").read_text(encoding="utf-8"))
    assert f"{s2['heldout_loss_before']:.3f} -> {s2['heldout_loss_after']:.3f}" in text


def test_readme_has_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text


def _index_markdown() -> list[str]:
    "The text of each markdown cell of index.ipynb, the notebook the README is made from."
    cells = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _published_run_prose() -> str:
    "The markdown of index.ipynb's 'The published run' section, which says every number in it comes from results/."
    text = "\n".join(_index_markdown())
    start = text.index("## The published run")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_quoted_numbers_are_the_published_runs():
    "Every number the index notebook's prose quotes equals the metric it names (`vlarl readme` rewrites them)."
    quoted = [text for text in _index_markdown() if QUOTED_METRIC.search(text)]
    assert quoted, "the index notebook quotes no published number"
    for text in quoted:
        assert quote_metrics(text, ROOT / "results") == text, "a quoted number is stale: run `vlarl readme`"


# settings, bars and section numbers the published-run prose states; every other decimal there must be a quoted metric
NOT_MEASURED = {"0.8", "0.5", "1.5", "+0.5", "3.2", "3.5", "0.36"}


def test_published_run_prose_types_no_number():
    "Outside the quotes, the published-run section's prose writes no measured decimal of its own."
    prose = QUOTED_METRIC.sub("", _published_run_prose())
    prose = re.sub(r"`[^`]*`", "", prose)  # code: settings such as `detect.render_scale=1.5`
    typed = [m for m in re.findall(r"(?<![\w.])[-+]?\d+\.\d+", prose) if m not in NOT_MEASURED]
    assert not typed, f"numbers typed into the published-run prose instead of quoted from results/: {typed}"
