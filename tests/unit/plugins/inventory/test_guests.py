"""The kvmfleet.libvirt.guests inventory plugin (plugins/inventory/guests.py) without a daemon: one hypervisor read
from libvirt's test driver, the hosts put into Ansible's own InventoryData, and an unreachable hypervisor left out
with a warning (or, strict, an error naming it)."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.template import trust_as_template

from ansible_collections.kvmfleet.libvirt.plugins.inventory.guests import InventoryModule, read_hypervisor

DEFAULT = "test:///default"  # shared by the process: other tests add guests to it, "test" is always there
UNREACHABLE = "qemu+unix:///system?socket=/nonexistent.sock"
HV1, HV2 = "qemu+ssh://root@hv1/system", "qemu+ssh://root@hv2/system"
# A test driver host of its own (a test:// URI of a file is a new private host at every connection): a managed,
# tagged guest running and an unmanaged one shut off.
NODE = """<node>
  <domain type='test'>
    <name>web1</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os>
    <metadata><kvmfleet:guest xmlns:kvmfleet='https://kvmfleet.dev/xmlns/libvirt/guest/1' managed='true'>
      <kvmfleet:tag name='role' value='web'/><kvmfleet:tag name='canary'/></kvmfleet:guest></metadata>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>off1</name><memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>"""


@pytest.fixture
def private_uri(tmp_path):
    path = tmp_path / "node.xml"
    path.write_text(NODE)
    return "test://" + str(path)


class Warnings:
    """What the plugin's display is asked to warn about."""

    def __init__(self):
        self.warnings = []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)


def plugin(**options):
    """The plugin with its options given (as parse() would have read them from the inventory file) and an empty
    inventory of Ansible's own."""
    given = dict({"strict": False, "compose": {}, "groups": {}, "keyed_groups": [], "addresses": False,
                  "parallel": 8, "filters": {}, "connect_timeout": 30, "hypervisors": None}, **options)
    module = InventoryModule()
    module.inventory = InventoryData()
    module.loader = DataLoader()
    module.get_option = given.__getitem__
    module.display = Warnings()
    return module


def guest(name, state="running", tags=None, addresses=None):
    """One guest as info.gather() returns it."""
    tags = tags or {}
    return {"name": name, "uuid": "uuid-%s-%s" % (name, state), "state": state, "libvirt_state": state,
            "active": state != "shutoff", "persistent": True, "autostart": False, "managed": True, "tags": tags,
            "spec": {"name": name, "memory": "128MiB", "vcpus": 1, "tags": tags}, "origin": None, "disks": [],
            "addresses": addresses or {}}


def names(guests):
    return [g["name"] for g in guests]


def test_reading_the_test_driver_gives_its_guests_and_no_error():
    uri, guests, error = read_hypervisor(DEFAULT, {}, False)
    assert (uri, error) == (DEFAULT, None)
    assert "test" in names(guests)
    test = next(g for g in guests if g["name"] == "test")
    assert test["state"] == "running" and "addresses" not in test  # addresses=False: not read


def test_an_unreachable_hypervisor_is_an_error_naming_it_not_an_exception():
    uri, guests, error = read_hypervisor(UNREACHABLE, {}, True)
    assert uri == UNREACHABLE and guests == []
    assert isinstance(error, str) and UNREACHABLE in error


def test_the_filters_select_the_guests(private_uri):
    assert names(read_hypervisor(private_uri, {}, False)[1]) == ["off1", "web1"]
    assert names(read_hypervisor(private_uri, {"state": ["running"]}, False)[1]) == ["web1"]
    assert names(read_hypervisor(private_uri, {"state": "shutoff"}, False)[1]) == ["off1"]
    assert names(read_hypervisor(private_uri, {"managed_only": True}, False)[1]) == ["web1"]
    assert names(read_hypervisor(private_uri, {"tags": {"role": "web"}}, False)[1]) == ["web1"]


def test_a_filter_that_selects_nothing_gives_an_empty_list(private_uri):
    assert read_hypervisor(private_uri, {"state": "paused"}, False) == (private_uri, [], None)
    assert read_hypervisor(private_uri, {"tags": {"role": "db"}}, False) == (private_uri, [], None)


def test_populate_adds_hosts_with_their_vars_and_groups():
    addresses = {"52:54:00:00:00:01": [{"address": "10.0.0.5", "prefix": 24, "source": "lease", "family": "ipv4"}]}
    inventory = plugin()
    guests = [guest("web1", tags={"role": "web"}, addresses=addresses), guest("db1", state="shutoff")]
    inventory._populate([{"uri": HV1, "guests": guests}])
    data = inventory.inventory
    assert sorted(data.hosts) == ["db1", "web1"]
    web = data.get_host("web1")
    assert web.vars["ansible_host"] == "10.0.0.5" and web.vars["kvmfleet_uri"] == HV1
    assert web.vars["kvmfleet_tags"] == {"role": "web"} and web.vars["kvmfleet_hypervisor"] == "hv1"
    assert "ansible_host" not in data.get_host("db1").vars
    assert {g.name for g in web.groups} == {"hypervisor_hv1", "state_running", "tag_role", "tag_role_web"}
    assert sorted(h.name for h in data.groups["hypervisor_hv1"].get_hosts()) == ["db1", "web1"]
    assert [h.name for h in data.groups["state_shutoff"].get_hosts()] == ["db1"]


def test_a_name_two_hypervisors_have_becomes_name_at_hypervisor_on_the_second():
    inventory = plugin()
    inventory._populate([{"uri": HV1, "guests": [guest("web1"), guest("db1")]},
                         {"uri": HV2, "guests": [guest("web1", state="paused")]}])
    data = inventory.inventory
    assert sorted(data.hosts) == ["db1", "web1", "web1@hv2"]
    first, second = data.get_host("web1"), data.get_host("web1@hv2")
    assert first.vars["kvmfleet_uri"] == HV1 and second.vars["kvmfleet_uri"] == HV2
    assert second.vars["kvmfleet_name"] == "web1" and second.vars["kvmfleet_state"] == "paused"
    assert [h.name for h in data.groups["hypervisor_hv2"].get_hosts()] == ["web1@hv2"]


def test_keyed_groups_are_made_from_the_host_vars():
    """The constructed options see the kvmfleet_* vars (the key trusted, as Ansible trusts an inventory file)."""
    inventory = plugin(keyed_groups=[{"key": trust_as_template("kvmfleet_tags.role"), "prefix": "role"}], strict=True)
    inventory._populate([{"uri": HV1, "guests": [guest("web1", tags={"role": "web"})]}])
    assert [h.name for h in inventory.inventory.groups["role_web"].get_hosts()] == ["web1"]


def test_an_unreachable_hypervisor_is_left_out_with_a_warning(private_uri):
    inventory = plugin()
    data = inventory._read([(None, private_uri), (None, UNREACHABLE)], {})
    assert [(entry["uri"], names(entry["guests"])) for entry in data] == [(private_uri, ["off1", "web1"]),
                                                                          (UNREACHABLE, [])]
    [warning] = inventory.display.warnings
    assert "hypervisor %s is left out" % UNREACHABLE in warning
    inventory._populate(data)
    assert sorted(inventory.inventory.hosts) == ["off1", "web1"]


def test_strict_makes_an_unreachable_hypervisor_an_error_naming_it(private_uri):
    inventory = plugin(strict=True)
    with pytest.raises(AnsibleParserError, match="kvmfleet.libvirt.guests: .*" + re.escape(UNREACHABLE)):
        inventory._read([(None, private_uri), (None, UNREACHABLE)], {})
    assert inventory.display.warnings == []


def test_hypervisors_by_name_give_their_names_to_groups(private_uri):
    """hypervisors: {hv1: uri}: the inventory's own names for the hypervisors, not the URI's host."""
    inventory = plugin()
    data = inventory._read([("hv1", private_uri)], {})
    assert data[0]["name"] == "hv1"
    inventory._populate(data)
    assert sorted(h.name for h in inventory.inventory.groups["hypervisor_hv1"].get_hosts()) == ["off1", "web1"]
    assert inventory.inventory.get_host("web1").vars["kvmfleet_hypervisor"] == "hv1"
