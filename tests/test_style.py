"The notebooks' code is in ruff's format with lines within 120 columns (`make format` fixes it)."

import json, shutil, subprocess, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
RUFF = [sys.executable, "-m", "ruff"]


def test_notebooks_are_formatted():
    result = subprocess.run(RUFF + ["format", "--check", "nbs"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"run `make format`:\n{result.stdout}{result.stderr}"


def test_the_check_sees_an_unformatted_cell(tmp_path):
    nb = json.loads((ROOT / "nbs" / "19_tasks.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["source"] = ["x = {  'a':1 }\n"]
    (tmp_path / "bad.ipynb").write_text(json.dumps(nb))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert subprocess.run(RUFF + ["format", "--check", "bad.ipynb"], cwd=tmp_path, capture_output=True).returncode == 1


def _long_lines(path) -> list[str]:
    "Exported lines of a notebook past 120 columns, the published Qwen3 chat template's Jinja lines excepted."
    return [
        l
        for c in nbformat.read(str(path), as_version=4).cells
        if c.cell_type == "code" and c.source.startswith("#| export")
        for l in c.source.splitlines()
        if len(l) > 120 and not l.lstrip().startswith(("{%", "{{"))
    ]


def test_library_lines_within_120_columns():
    long = {p.stem: lines for p in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")) if (lines := _long_lines(p))}
    assert not long, f"exported lines past 120 columns: {long}"
