"The package's import graph: no cycles, and no module importing one from a layer above it (function-level imports count)."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "vlarl"

# The architecture, bottom to top: a module may import only modules of its own layer or of the layers below it.
LAYERS = [
    ["config", "schema", "model.checkpoints", "tools.notebooks", "tools.schedule", "eval.image_metrics", "dialect.data",
     "viz.figures",
     "viz.tables"],  # no simulator
    ["sim"],                                                                    # the simulator, its labels and captions
    ["kinematics", "eval.metrics"],
    ["rewards.driving"],
    ["data.nuscenes", "data.bdd"],
    ["data.clips"],
    ["rewards.detect", "rewards.caption", "rewards.semantic", "viz.reward_view"],   # the verifiers
    ["model.vlm", "model.vq"],
    ["tasks"],                                                                  # prompts, targets, the plan frame
    ["train.sft", "model.smolvlm", "model.hierarchical"],                       # SmolVLM and the env tokens train as stages do
    ["train.grpo", "train.actor_critic"],
    ["eval.inference"],
    ["eval.closed_loop"],                                                        # the policies drive in the simulator
    ["imagination.warp"],                                                       # the prior-warp
    ["imagination.world_model"],                                                # the world model (B.1 (a))
    ["imagination.visual_task"],                                                # the drive_visual task (B.1 (b))
    ["imagination.report"],                                                     # imagination metrics and viewer
    ["dialect.translator", "dialect.classifier", "dialect.pairs"],
    ["tools.launch", "tools.bench", "tools.docs", "tools.cli"],
]


def modules() -> dict[str, Path]:
    "Dotted module names under vlarl (e.g. `train.grpo`) -> their files."
    return {".".join(p.relative_to(PKG).with_suffix("").parts): p for p in PKG.rglob("*.py") if not p.name.startswith("_")}


def _target(module: str, node: ast.ImportFrom) -> str | None:
    "The dotted vlarl module a `from ... import` in `module` names, relative or absolute."
    if node.level:
        pkg = module.split(".")[:-1]
        return ".".join(pkg[:len(pkg) - (node.level - 1)] + ([node.module] if node.module else []))
    if node.module == "vlarl": return ""                  # `from vlarl import x`: the names are the modules
    if node.module and node.module.startswith("vlarl."): return node.module[len("vlarl."):]
    return None


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    "The vlarl modules `path` imports anywhere in its code (module level or inside functions)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (t := _target(module, node)) is not None:
            found |= {t} if t in known else {f"{t}.{a.name}".lstrip(".") for a in node.names if f"{t}.{a.name}".lstrip(".") in known}
        elif isinstance(node, ast.Import):
            found |= {a.name[len("vlarl."):] for a in node.names if a.name[len("vlarl."):] in known}
    return found - {module}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) for m, p in mods.items()}


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
    cycle = find_cycle(graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_module_imports_from_above():
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    upward = [f"{m} (layer {layer[m]}) imports {t} (layer {layer[t]})" for m, ts in graph().items() for t in ts if layer[t] > layer[m]]
    assert not upward, "\n".join(upward)


def test_the_checks_see_what_they_claim():
    "The cycle finder finds a cycle, and the reader resolves relative and function-level imports."
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    known = set(modules())
    assert {"train.sft", "rewards.detect", "tasks"} <= imports("train.grpo", PKG / "train" / "grpo.py", known)  # relative, function-level
    assert "tools.docs" in imports("tools.cli", PKG / "tools" / "cli.py", known)     # imported inside `cmd_docs`


def test_real_data_and_rewards_do_not_start_the_simulator():
    "Reading nuScenes or BDD, scoring a plan and the kinematic prior import no highway-env (its pygame and gymnasium)."
    import subprocess
    import sys
    code = ("import sys, vlarl.data.nuscenes, vlarl.data.bdd, vlarl.rewards.driving, vlarl.kinematics, vlarl.eval.metrics, vlarl.tasks; "
            "print(sorted(m for m in ('highway_env', 'gymnasium', 'pygame') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, check=True).stdout
    assert out.strip() == "[]", out
