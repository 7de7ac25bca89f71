"""Conventions every module keeps (issue 24): the action group for module_defaults, samples for every return value,
the guest named ``name``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot import spec as snapshot_spec

from testdriver import module_params

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("*.py") if path.stem != "__init__")


def _module(name):
    return importlib.import_module("ansible_collections.kvmfleet.libvirt.plugins.modules.%s" % name)


class _Captured(Exception):
    pass


def _argument_spec(name, monkeypatch):
    """The argument spec main() hands to AnsibleModule."""
    def capture(**kwargs):
        raise _Captured(kwargs["argument_spec"])
    monkeypatch.setattr(_runner, "AnsibleModule", capture)
    with pytest.raises(_Captured) as captured:
        _module(name).main()
    return captured.value.args[0]


def test_the_action_group_holds_every_module_with_the_connection_options(monkeypatch):
    """module_defaults for group/kvmfleet.libvirt.all gives uri and connect_timeout to every module in the group: each
    must take both (Ansible passes the group's defaults to each member, and a member without them would fail on an
    unsupported parameter), and each module that takes them is in the group and documents its membership."""
    group = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["all"]
    with_connection = []
    for name in MODULES:
        spec = _argument_spec(name, monkeypatch)
        documentation = yaml.safe_load(_module(name).DOCUMENTATION)
        fragment = "kvmfleet.libvirt.connection" in documentation.get("extends_documentation_fragment", [])
        assert ("uri" in spec) == ("connect_timeout" in spec) == fragment, name
        if "uri" in spec:
            with_connection.append(name)
    assert sorted(group) == with_connection
    assert len(group) == 13 and "cluster_info" not in group  # cluster_info takes a list of hypervisors, no uri


def _without_sample(returns, where=""):
    missing = []
    for key, value in (returns or {}).items():
        if "sample" not in value:
            missing.append(where + key)
        missing.extend(_without_sample(value.get("contains"), "%s%s." % (where, key)))
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_every_return_value_has_a_sample(name):
    returns = yaml.safe_load(_module(name).RETURN)
    assert returns, name
    assert _without_sample(returns) == [], "%s: return values without a sample" % name


def test_the_sample_walk_finds_a_missing_nested_sample():
    returns = {"a": {"sample": 1, "contains": {"b": {"type": "str"}, "c": {"sample": "x"}}}, "d": {"type": "int"}}
    assert _without_sample(returns) == ["a.b", "d"]


def test_snapshot_info_names_the_guest_name_and_still_takes_guest():
    spec = snapshot_spec.info_argument_spec()
    assert module_params(spec, name="web01")["name"] == "web01"
    assert module_params(spec, guest="web01")["name"] == "web01"  # the alias, as tasks written before say it
    with pytest.raises(ValueError):
        module_params(spec)


def test_a_guest_is_named_name_where_the_guest_is_the_object(monkeypatch):
    """Modules whose object is a guest take its name as ``name``. snapshot is the one exception: its object is the
    snapshot (``name``), the guest is ``guest``; recover's ``guest`` is a guest's whole description, not a name."""
    for name in ("domain", "domain_info", "migrate", "snapshot_info"):
        assert "name" in _argument_spec(name, monkeypatch), name
    assert _argument_spec("snapshot_info", monkeypatch)["name"]["aliases"] == ["guest"]
    assert _argument_spec("recover", monkeypatch)["guest"]["type"] == "dict"
