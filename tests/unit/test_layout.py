"""pipeline/'s layout: every module imports, and no chain of imports inside pipeline/ leads back to
where it started (an import circle works only in the order that happens to load it first)."""

import ast
import graphlib
import importlib
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"


def module_name(path: Path) -> str:
    parts = path.relative_to(PIPELINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PIPELINE.rglob("*.py"))}


def imports(path: Path, modules=MODULES) -> set[str]:
    """The modules of ``modules`` that ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pipeline.steps import build` imports the module pipeline.steps.build
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                         for alias in node.names)
    return found & set(modules)


def import_graph(modules=MODULES) -> dict[str, set[str]]:
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_pipeline_module_imports(name):
    importlib.import_module(name)


def test_no_import_circle_inside_the_pipeline():
    try:
        tuple(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_the_graph_sees_an_import_inside_a_function(tmp_path):
    """The circle index_api.py and indexes/devpi.py had: one of the two imports was inside a method."""
    (tmp_path / "a.py").write_text("from pipeline.b import B\n")
    (tmp_path / "b.py").write_text("class B:\n    def new(self):\n        from pipeline import a\n")
    modules = {"pipeline.a": tmp_path / "a.py", "pipeline.b": tmp_path / "b.py"}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(import_graph(modules)).static_order())


def test_commands_are_one_module_each_with_main():
    """python -m pipeline <command> runs pipeline/commands/<command>.py's main(args)."""
    from pipeline.__main__ import main_parser

    subcommands = next(a for a in main_parser()._actions if a.dest == "command").choices
    for command in subcommands:
        assert callable(importlib.import_module(f"pipeline.commands.{command.replace('-', '_')}").main), command


def test_no_committed_file_holds_a_merge_conflict_marker():
    """A merge committed with its markers (benchmarks/run.py once) breaks whatever imports the file."""
    import subprocess

    root = PIPELINE.parent
    found = subprocess.run(["git", "grep", "-n", "-E", "^(<{7} |>{7} |={7}$)", "--", ".", ":!*.png"],
                           cwd=root, capture_output=True, text=True)
    assert found.returncode == 1 and not found.stdout, found.stdout  # 1: git grep found nothing
