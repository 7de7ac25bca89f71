"""The input every module refuses first: a dict option given another shape, a string XML cannot hold."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._input import shape_problems, xml_unsafe

SPEC = {"ipv4": {"type": "dict", "options": {"dhcp": {"type": "dict", "options": {"ranges": {
    "type": "list", "elements": "dict", "options": {"start": {"type": "str"}}}}}}},
    "disks": {"type": "list", "elements": "dict", "options": {"size": {"type": "str"}}},
    "password": {"type": "str", "no_log": True}, "name": {"type": "str"}}


def test_a_dict_option_given_another_shape_is_named():
    assert shape_problems(SPEC, {"ipv4": 5}) == ["option ipv4: expected a dict, got int"]
    assert shape_problems(SPEC, {"ipv4": {"dhcp": {"ranges": ["x"]}}}) == \
        ["option ipv4.dhcp.ranges[0]: expected a dict, got str"]
    assert shape_problems(SPEC, {"disks": {"size": 1}}) == ["option disks: expected a list of dicts, got dict"]
    assert shape_problems(SPEC, {"ipv4": "address=10.0.0.1/24", "disks": [{"size": "1GiB"}], "name": 5}) == []


def test_a_character_xml_cannot_hold_is_named_and_a_secret_is_not_shown():
    assert xml_unsafe(SPEC, {"name": "a\x00b"}) == ("name", "a\x00b")
    assert xml_unsafe(SPEC, {"password": "se\x01cret"}) == ("password", "(hidden)")
    assert xml_unsafe(SPEC, {"disks": [{"size": "1GiB"}, {"size": "\x1f"}]}) == ("disks[1].size", "\x1f")
    assert xml_unsafe(SPEC, {"name": "tab\tnew\nline\r ok \u00fc"}) is None
