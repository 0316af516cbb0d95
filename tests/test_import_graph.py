"The package's import graph: no cycles, and no module importing one from a layer above it (function-level imports count)."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "vlarl"

# The architecture, bottom to top: a module may import only modules of its own layer or the layers below it.
LAYERS = [
    ["config", "checkpoints", "notebooks", "image_metrics", "dialect_data"],   # settings, checkpoint formats, no simulator
    ["world"],                                                                   # the simulator
    ["kinematics", "metrics"],
    ["rewards"],
    ["nuscenes_data", "bdd_data"],
    ["data"],
    ["detect", "caption_reward", "semantic", "reward_view"],                     # the verifiers
    ["model", "vq"],
    ["tasks"],                                                                   # prompts, targets, the plan frame
    ["training"],
    ["grpo"],
    ["inference"],
    ["imagination"],
    ["dialect_translator", "dialect_classifier", "dialect_pairs"],
    ["launch", "docs", "cli"],                                                   # tools
]


def modules() -> dict[str, Path]:
    return {p.stem: p for p in PKG.glob("*.py") if not p.stem.startswith("_")}


def imports(path: Path) -> set[str]:
    "The vlarl modules `path` imports anywhere in its code (module level or inside functions)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level == 1: found.add(node.module.split(".")[0])
            elif node.module.startswith("vlarl."): found.add(node.module.split(".")[1])
            elif node.module == "vlarl": found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("vlarl."))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {t for t in imports(p) if t in mods and t != m} for m, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    "One import cycle of `g` as a list of modules, or None."
    state, stack = {}, []
    def visit(m):
        state[m] = "open"; stack.append(m)
        for t in sorted(g[m]):
            if state.get(t) == "open": return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)): return c
        state[m] = "done"; stack.pop()
        return None
    for m in sorted(g):
        if m not in state and (c := visit(m)): return c
    return None


def test_every_module_has_a_layer():
    placed = [m for layer in LAYERS for m in layer]
    assert len(placed) == len(set(placed)), "a module is listed twice"
    assert set(placed) == set(modules()), f"unplaced: {sorted(set(modules()) - set(placed))}, gone: {sorted(set(placed) - set(modules()))}"


def test_no_import_cycles():
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


def test_no_module_imports_from_above():
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    upward = [f"{m} (layer {layer[m]}) imports {t} (layer {layer[t]})" for m, ts in graph().items() for t in ts if layer[t] > layer[m]]
    assert not upward, "\n".join(upward)


def test_the_checks_catch_what_they_claim():
    "The cycle finder and the import reader see a cycle and a function-level import."
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    src = PKG / "grpo.py"
    assert "training" in imports(src), "grpo imports training (inside functions too)"
