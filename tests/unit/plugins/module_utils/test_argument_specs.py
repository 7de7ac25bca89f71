"""Every module's argument spec comes from a spec module (the field tables where there are some); its
documentation must say the same.

(ansible-test's validate-modules checks this too; here it is fast, and names the option.)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.kvmfleet.libvirt.plugins.doc_fragments.connection import ModuleDocFragment

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import devices, spec as domain_spec, table

MODULES_DIR = Path(__file__).resolve().parents[4] / "plugins" / "modules"
MODULES = sorted(path.stem for path in MODULES_DIR.glob("*.py") if path.stem != "__init__")
_DEFAULT_TYPE = "str"


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__("argument spec captured")
        self.kwargs = kwargs


def _argument_spec(name, monkeypatch):
    """The argument spec the module's main() hands to AnsibleModule (as validate-modules finds it): main() runs
    with an AnsibleModule that stops it there."""
    module = importlib.import_module("ansible_collections.kvmfleet.libvirt.plugins.modules.%s" % name)

    def capture(**kwargs):
        raise _Captured(kwargs)
    monkeypatch.setattr(_runner, "AnsibleModule", capture)
    with pytest.raises(_Captured) as captured:
        module.main()
    return module, captured.value.kwargs["argument_spec"]


def test_every_module_is_a_thin_module_main():
    """Each module's code is its docs and a call of _runner.module_main: its argument spec comes from a spec
    module, never built in main()."""
    assert len(MODULES) == 17, MODULES
    for name in MODULES:
        source = (MODULES_DIR / (name + ".py")).read_text()
        code = source[source.rindex('"""') + 3:]
        assert "module_main(" in code and "AnsibleModule(" not in code and "argument_spec={" not in code, name


def _compare(spec, docs, where, problems):
    for key in sorted(set(spec) | set(docs)):
        option = "%s%s" % (where, key)
        if key not in docs:
            problems.append("%s: in the argument spec, not in DOCUMENTATION" % option)
            continue
        if key not in spec:
            problems.append("%s: in DOCUMENTATION, not in the argument spec" % option)
            continue
        arg, doc = spec[key], docs[key]
        for attr in ("type", "choices", "default", "required", "elements"):
            wanted = arg.get(attr, _DEFAULT_TYPE if attr == "type" else (False if attr == "required" else None))
            said = doc.get(attr, _DEFAULT_TYPE if attr == "type" else (False if attr == "required" else None))
            if wanted != said:
                problems.append("%s.%s: argument spec %r, DOCUMENTATION %r" % (option, attr, wanted, said))
        if arg.get("options") or doc.get("suboptions"):
            _compare(arg.get("options") or {}, doc.get("suboptions") or {}, option + ".", problems)


@pytest.mark.parametrize("name", MODULES)
def test_documentation_says_what_the_argument_spec_takes(name, monkeypatch):
    module, spec = _argument_spec(name, monkeypatch)
    documentation = yaml.safe_load(module.DOCUMENTATION)
    docs = documentation.get("options") or {}
    if "kvmfleet.libvirt.connection" in documentation.get("extends_documentation_fragment", []):
        fragment = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
        docs.update({key: docs.get(key) or value for key, value in fragment.items()})  # from the fragment
    problems = []
    _compare(spec, docs, "", problems)
    assert not problems, "\n".join(problems)


def test_every_domain_field_is_an_option_with_its_codec_s_type_and_choices():
    spec = domain_spec.argument_spec()
    for field in table.DOMAIN_FIELDS:
        entry = spec
        for part in field.key.split("."):
            entry = entry.get("options", entry)[part]
        codec_spec = field.argspec()
        assert {k: entry.get(k) for k in codec_spec} == codec_spec, field.key
    for kind in devices.DEVICE_KINDS:
        if spec[kind.name]["type"] == "raw":  # a count or a list (redirdevs): the kind checks its items
            continue
        options = spec[kind.name]["options"]
        for field in kind.fields:
            if field.argspec() is not None:
                assert {k: options[field.key].get(k) for k in field.argspec()} == field.argspec(), (kind.name, field.key)


def test_the_fleet_s_guest_options_are_the_domain_module_s():
    """fleet's guests take the domain module's guest options (one argument spec), documented from its docs."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet import spec as fleet_spec
    assert fleet_spec.argument_spec()["guests"]["options"] == domain_spec.guest_options()
    sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tools"))
    import fleet_doc  # pylint: disable=import-outside-toplevel
    assert fleet_doc.main(["--check"]) == 0, "run python tools/fleet_doc.py"
