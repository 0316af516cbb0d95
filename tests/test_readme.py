"""README.md is generated from nbs/index.ipynb and must not drift from it."""
from pathlib import Path

from vlarl.cli import notebook_to_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_readme_matches_index_notebook():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == notebook_to_markdown(ROOT / "nbs" / "index.ipynb"), \
        "README.md is out of date: run `vlarl readme`"


def test_readme_has_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text
