"""Comments and docstrings name only modules and functions that exist (issue 11: stale pointers).

Every `core.x`, `core.x.name`, `ui/x.py` or `core/x.py:name`-style mention in a comment or a
docstring of core/, ui/, pages/ and app.py must resolve: the module is a file or package of the
repo, and a name after it is defined at the top of that module (or in the body of a class there).
Read from the source with ast/tokenize, nothing is imported.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import lru_cache
from pathlib import Path

import pytest

from tests.conftest import REPO

# core.x.y / ui.x / core/x.py / core/x.py:name
MENTION = re.compile(r"(?<![\w./])((?:core|ui)(?:[./](?!py\b)[A-Za-z_]\w*)+)(?:\.py)?(?::([A-Za-z_]\w*))?")


def source_files(root: Path) -> list[Path]:
    return sorted([*root.joinpath("core").rglob("*.py"), *root.joinpath("ui").rglob("*.py"),
                   *root.joinpath("pages").glob("*.py"), root / "app.py"])


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a module's source."""
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                found.append((node.body[0].lineno, doc))
    return found


@lru_cache(maxsize=None)
def _defined(path: Path) -> dict[str, ast.AST | None]:
    """Top-level names of a module: name -> its ClassDef (to look into) or None."""
    names: dict[str, ast.AST | None] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = None
    return names


def _class_members(node: ast.ClassDef) -> set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members.add(item.target.id)
        elif isinstance(item, ast.Assign):
            members.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return members


def resolves(root: Path, dotted: str) -> bool:
    """Whether core.a.b.name.member names a module of root and a name defined in it."""
    parts = re.split(r"[./]", dotted.removesuffix(".py"))
    path = root / parts[0]
    rest = parts[1:]
    while rest and (path / rest[0]).is_dir():
        path, rest = path / rest[0], rest[1:]
    if rest and path.joinpath(rest[0] + ".py").is_file():
        module, rest = path / (rest[0] + ".py"), rest[1:]
    elif path.joinpath("__init__.py").is_file():
        module = path / "__init__.py"
    else:
        return False
    if not rest:
        return True
    defined = _defined(module)
    if rest[0] not in defined:
        return False
    owner = defined[rest[0]]
    if len(rest) > 1 and isinstance(owner, ast.ClassDef):
        return rest[1] in _class_members(owner)
    return True


def stale_mentions(root: Path) -> list[str]:
    """'file:line: mention' for each comment/docstring mention that does not resolve."""
    stale = []
    for path in source_files(root):
        for line, text in prose(path.read_text(encoding="utf-8")):
            for match in MENTION.finditer(text):
                dotted = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
                if not resolves(root, dotted):
                    stale.append(f"{path.relative_to(root)}:{line}: {match.group(0)}")
    return sorted(stale)


def test_comments_and_docstrings_name_modules_that_exist():
    assert stale_mentions(REPO) == []


@pytest.mark.parametrize("mention, exists", [
    ("core.outcomes", True), ("core.outcomes.Outcome", True), ("core.outcomes.Outcome.label", True),
    ("core/drawing.py", True), ("core.catalog.store", True), ("ui.loaders.derived", True),
    ("core.errors", False), ("core.outcomes.ErrorType", False), ("core.outcomes.Outcome.colour", False),
    ("core/sources.py", False), ("ui.widgets_old", False),
])
def test_the_check_tells_a_stale_mention_from_a_live_one(mention, exists):
    assert resolves(REPO, mention) is exists


def test_a_stale_mention_in_a_comment_is_reported(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "real.py").write_text('"""See core.real.thing and core.gone."""\nthing = 1\n'
                                               "# moved to core/real.py:other\n")
    (tmp_path / "app.py").write_text("")
    assert stale_mentions(tmp_path) == ["core/real.py:1: core.gone", "core/real.py:3: core/real.py:other"]


def map_entries(root: Path) -> list[tuple[str, str]]:
    """(module, name) for each backticked name of a `- `ui.x`: ...` bullet in ui/__init__.py's
    module map (a name with its call, `bind(KEY)`, counts as `bind`)."""
    doc = ast.get_docstring(ast.parse((root / "ui" / "__init__.py").read_text(encoding="utf-8"))) or ""
    entries = []
    for bullet in re.split(r"\n- ", doc)[1:]:
        head = re.match(r"`((?:core|ui)\.\w+)`:", bullet)
        if head is None:
            continue
        for name in re.findall(r"`([A-Za-z_]\w*)(?:\([^`]*\))?`", bullet[head.end():]):
            entries.append((head.group(1), name))
    return entries


def test_the_ui_module_map_lists_names_its_modules_define():
    entries = map_entries(REPO)
    assert len(entries) >= 10  # the map is parsed
    missing = [f"{module}.{name}" for module, name in entries if not resolves(REPO, f"{module}.{name}")]
    assert missing == [], "ui/__init__.py's module map names what its module does not define"
