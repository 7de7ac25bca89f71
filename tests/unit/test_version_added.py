"""Every ``version_added`` in the collection's documentation names a version users can have: one released in
changelogs/changelog.yaml, or the one galaxy.yml prepares, and never one newer than galaxy.yml's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def galaxy_version():
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def released_versions():
    changelog = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())
    return set((changelog.get("releases") or {}).keys())


def _python_docs(path):
    """DOCUMENTATION and RETURN of a plugin written in Python, read without importing it."""
    docs = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "RETURN") and isinstance(node.value, ast.Constant):
                docs[name] = yaml.safe_load(node.value.value) or {}
    return docs


def documented():
    """(file, its documentation) for every plugin, doc fragment, filter and role argument spec."""
    for path in sorted((ROOT / "plugins").glob("*/*.py")):
        if path.parent.name in ("module_utils", "plugin_utils", "filter") or path.name == "__init__.py":
            continue
        if path.parent.name == "doc_fragments":
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, str):
                    yield path.relative_to(ROOT), {"fragment": yaml.safe_load(node.value.value)}
            continue
        yield path.relative_to(ROOT), _python_docs(path)
    for path in sorted((ROOT / "plugins" / "filter").glob("*.yml")):
        yield path.relative_to(ROOT), yaml.safe_load(path.read_text())
    for path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        yield path.relative_to(ROOT), yaml.safe_load(path.read_text())


def version_added_entries(doc, where=""):
    """(where, value) of every version_added key, at any depth."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "version_added":
                yield where or ".", value
            else:
                yield from version_added_entries(value, "%s.%s" % (where, key) if where else str(key))
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            yield from version_added_entries(item, "%s[%d]" % (where, index))


def version_added_problems(doc, version, released):
    """What is wrong with the version_added values in one document, given galaxy.yml's version and the released
    versions."""
    allowed = set(released) | {version}
    problems = []
    for where, value in version_added_entries(doc):
        text = str(value)
        if Version(text) > Version(version):
            problems.append("%s: version_added %s is newer than galaxy.yml's %s" % (where, text, version))
        elif text not in allowed:
            problems.append("%s: version_added %s is not a released version (released: %s; galaxy.yml: %s)"
                            % (where, text, ", ".join(sorted(released)) or "none", version))
    return problems


@pytest.mark.parametrize("doc, problems", [
    ({"version_added": "0.1.0"}, []),
    ({"options": {"a": {"version_added": "0.2.0"}}}, []),  # the version galaxy.yml prepares
    ({"options": {"a": {"suboptions": {"b": {"version_added": "0.3.0"}}}}},
     ["options.a.suboptions.b: version_added 0.3.0 is newer than galaxy.yml's 0.2.0"]),
    ({"RETURN": {"x": {"version_added": "0.0.5"}}},
     ["RETURN.x: version_added 0.0.5 is not a released version (released: 0.1.0; galaxy.yml: 0.2.0)"]),
    ({"list": [{"version_added": "1.0.0"}]}, ["list[0]: version_added 1.0.0 is newer than galaxy.yml's 0.2.0"]),
])
def test_problems_are_found(doc, problems):
    assert version_added_problems(doc, "0.2.0", {"0.1.0"}) == problems


def test_every_version_added_is_released_or_galaxy_version():
    version, released = galaxy_version(), released_versions()
    problems = []
    for path, doc in documented():
        problems += ["%s: %s" % (path, problem) for problem in version_added_problems(doc, version, released)]
    assert not problems, "\n".join(problems)


def test_every_plugin_says_when_it_was_added():
    """The walk above sees every plugin: each module, inventory plugin and filter has a top-level version_added."""
    missing = []
    count = 0
    for path, doc in documented():
        if path.parts[1] in ("modules", "inventory", "filter"):
            count += 1
            if "version_added" not in (doc.get("DOCUMENTATION") or {}):
                missing.append(str(path))
    assert count >= 30 and not missing, missing
