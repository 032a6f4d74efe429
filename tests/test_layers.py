"""Stages import downward only: neqa (core) ← data_pipeline ← eval_pipeline ← simulation ← benchmarks, scripts.
Read from the source with ast, so an import inside a function counts too."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = ["neqa", "data_pipeline", "eval_pipeline", "simulation", "benchmarks", "scripts"]


def imported_stages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in ORDER}
    return found


def test_no_module_imports_a_stage_above_it():
    bad = []
    for rank, stage in enumerate(ORDER):
        for path in sorted((REPO / stage).rglob("*.py")):
            for other in imported_stages(path):
                if ORDER.index(other) > rank:
                    bad.append(f"{path.relative_to(REPO)} imports {other}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from simulation.loop import train\n    import eval_pipeline.plot\n")
    assert imported_stages(f) == {"simulation", "eval_pipeline"}
