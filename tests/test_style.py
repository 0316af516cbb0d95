"The notebooks' code is in ruff's format with lines within 120 columns (`make format` fixes it)."

import ast, json, re, shutil, subprocess, sys
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


def _unannotated(source: str) -> list[str]:
    "Public functions' and public classes' methods' parameters without a type hint, as `name(param)`."
    tree = ast.parse(source)
    public = next(
        (
            {e.value for e in node.value.elts}
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
        ),
        None,
    )
    is_def = lambda n: isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    defs = [n for n in tree.body if is_def(n) and (public is None or n.name in public)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and (public is None or n.name in public)):
        defs += [n for n in cls.body if is_def(n) and (not n.name.startswith("_") or n.name == "__init__")]
    missing = []
    for fn in (d for d in defs if not d.name.startswith("_") or d.name == "__init__"):
        a = fn.args
        params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p is not None]
        missing += [f"{fn.name}({p.arg})" for p in params if p.annotation is None and p.arg not in ("self", "cls")]
    return missing


def test_public_parameters_have_type_hints():
    missing = {
        str(p.relative_to(ROOT)): names
        for p in sorted((ROOT / "vlarl").rglob("*.py"))
        if not p.name.startswith("_") and (names := _unannotated(p.read_text()))
    }
    assert not missing, f"public parameters without a type hint: {missing}"


def test_the_hint_check_sees_a_bare_parameter():
    source = "__all__ = ['f', 'C']\ndef f(x: int, y): pass\ndef _g(z): pass\nclass C:\n    def m(self, w): pass\n"
    assert _unannotated(source) == ["f(y)", "m(w)"]


SPLIT_COMMENT = re.compile(r"^\s*(\]|\)|\|)[^#\n]*,\s+#")  # a parameter's comment after the last line of its hint


def test_parameter_comments_stay_with_their_parameter():
    "nbdev's docments reads a parameter's comment from its first line; one after a wrapped hint is lost or misplaced."
    bad = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in sorted((ROOT / "vlarl").rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if SPLIT_COMMENT.match(line)
    ]
    assert not bad, f"put these comments on the line above their parameter: {bad}"


def test_the_comment_check_sees_a_misplaced_comment():
    assert SPLIT_COMMENT.match("    | None = None,  # what it is")
    assert SPLIT_COMMENT.match("    ] = (),  # what it is")
    assert not SPLIT_COMMENT.match("    x: int | None = None,  # what it is")
