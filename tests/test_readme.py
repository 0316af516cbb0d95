"""README.md is generated from nbs/index.ipynb and the published run's results/, and must not drift from either."""
import json
from pathlib import Path

from vlarl.tools.cli import RESULTS_MARKER, readme_text, results_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_readme_matches_index_notebook_and_results():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == readme_text(ROOT / "nbs" / "index.ipynb", ROOT / "results"), \
        "README.md is out of date: run `vlarl readme`"


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
