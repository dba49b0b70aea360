"""The house's import rules, checked on the source: data flows one way, and so do imports.

    core  <-  classifiers, tokenizer_train, model  <-  pipeline (may use classifiers)  <-  command layer

The core (`gemmaflow.core`) imports no room; a room imports the core and rooms below it, never the
command layer (`gemmaflow.cli`, `gemmaflow.commands`, `gemmaflow.report`, `gemmaflow.demo`); `model`
and `classifiers` never import Beam; the trainer and the model code never import the user-facing API
(`model/api.py`), which sits on top of them; only the evaluation, a user of that API, sits above it.
Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOMS = ("pipeline", "classifiers", "tokenizer_train", "model")
# Which layers each layer may import (besides itself and third-party packages).
ALLOWED = {
    "core": set(),
    "classifiers": {"core"},
    "tokenizer_train": {"core"},
    "model": {"core"},
    "pipeline": {"core", "classifiers"},
    "command": {"core", *ROOMS},
}
NO_BEAM = ("model", "classifiers", "core")
USER_API = "gemmaflow.model.api"
ABOVE_USER_API = ("gemmaflow.model", "gemmaflow.model.evaluate", "gemmaflow.model.sxs")  # lazy export, evaluation


def module_files(repo: Path) -> Iterator[tuple[str, Path]]:
    """(module name, file) for every module of the installed package, from its source folders."""
    folders = [(repo / room, ("gemmaflow", room)) for room in ROOMS] + [(repo / "gemmaflow", ("gemmaflow",))]
    for folder, prefix in folders:
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            yield ".".join((*prefix, *(parts[:-1] if parts[-1] == "__init__" else parts))), path


def layer(module: str) -> str | None:
    """The layer a gemmaflow module belongs to; None for anything outside gemmaflow."""
    parts = module.split(".")
    if parts[0] != "gemmaflow":
        return None
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    if len(parts) > 1 and parts[1] == "core":
        return "core"
    return "command"


def imports_of(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module `path` imports (absolute names, relative imports resolved), with its line."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            yield target, node.lineno
            for alias in node.names:  # `from gemmaflow.model import api` imports a module too
                yield f"{target}.{alias.name}", node.lineno


def violations(repo: Path) -> list[str]:
    found = []
    for module, path in module_files(repo):
        source = layer(module)
        assert source is not None
        for target, line in imports_of(module, path):
            where = f"{path.relative_to(repo)}:{line}: {module} imports {target}"
            target_layer = layer(target)
            if target.split(".")[0] == "apache_beam" and source in NO_BEAM:
                found.append(f"{where} ({source} must not import Beam)")
            if target_layer is None or target_layer == source:
                if target.startswith(USER_API) and source == "model" and module not in ABOVE_USER_API:
                    found.append(f"{where} (the trainer and model code must not import the user API)")
                continue
            if target_layer not in ALLOWED[source]:
                found.append(f"{where} ({source} may import only {sorted(ALLOWED[source]) or 'itself'})")
    return found


def test_no_import_runs_back_up_the_flow():
    assert violations(REPO) == []


def test_the_checker_catches_an_edge_that_runs_back_up(tmp_path):
    for room in ROOMS:
        (tmp_path / room).mkdir()
        (tmp_path / room / "__init__.py").write_text("")
    (tmp_path / "gemmaflow" / "core").mkdir(parents=True)
    (tmp_path / "gemmaflow" / "__init__.py").write_text("")
    (tmp_path / "gemmaflow" / "core" / "util.py").write_text("from gemmaflow.pipeline import stats\n")
    (tmp_path / "model" / "train.py").write_text("def f():\n    from .api import GemmaLM\n    import apache_beam\n")
    (tmp_path / "classifiers" / "x.py").write_text("from gemmaflow.commands import common\n")
    found = "\n".join(violations(tmp_path))
    assert "gemmaflow.core.util imports gemmaflow.pipeline (core may import only itself)" in found
    assert "gemmaflow.model.train imports gemmaflow.model.api (the trainer" in found
    assert "(model must not import Beam)" in found
    assert "gemmaflow.classifiers.x imports gemmaflow.commands (classifiers may import only ['core'])" in found


def test_rooms_import_under_the_one_namespace():
    """No module imports a room by its bare folder name (`import pipeline`), which would not install."""
    bare = [
        f"{path.relative_to(REPO)}:{line}: {target}"
        for module, path in module_files(REPO)
        for target, line in imports_of(module, path)
        if target.split(".")[0] in ROOMS
    ]
    assert bare == []
