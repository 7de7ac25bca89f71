"""Guests as inventory hosts (module_utils/_domain/inventory.py) over plain data shaped as info.gather() returns it:
group names, hypervisor names, the guest's address, the plugin's filters, and each guest's host vars and groups."""

from __future__ import annotations

import re

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.inventory import (
    first_address,
    group_name,
    hypervisor_name,
    inventory_hosts,
    matches,
)

HV1 = "qemu+ssh://root@hv1/system"
HV2 = "qemu+tcp://192.168.250.11/system"
TESTBED_SOCKET = "qemu+unix:///system?socket=/run/kvmfleet-testbed/hv1/run/libvirt/libvirt-sock"
HOST_VARS = {"kvmfleet_name", "kvmfleet_uuid", "kvmfleet_state", "kvmfleet_hypervisor", "kvmfleet_uri",
             "kvmfleet_managed", "kvmfleet_tags", "kvmfleet_spec", "kvmfleet_addresses"}


def address(addr, family="ipv4", source="lease", prefix=24):
    return {"address": addr, "prefix": prefix, "source": source, "family": family}


def guest(name, state="running", active=None, managed=True, tags=None, addresses=None, libvirt_state=None):
    """One guest as info.gather() returns it (want_stats=False; ``addresses`` only when they were asked for)."""
    tags = {} if tags is None else tags
    entry = {
        "name": name,
        "uuid": "uuid-" + name,
        "state": state,
        "libvirt_state": libvirt_state or state,
        "active": state in ("running", "paused") if active is None else active,
        "persistent": True,
        "autostart": False,
        "managed": managed,
        "tags": tags,
        "spec": {"name": name, "virt_type": "kvm", "memory": "128MiB", "vcpus": 1, "tags": tags},
        "origin": None,
        "disks": [{"dev": "vda", "device": "disk", "path": "/var/lib/libvirt/images/%s.qcow2" % name, "pool": None,
                   "volume": None, "readonly": False, "shareable": False, "capacity_bytes": 1 << 30,
                   "allocation_bytes": 1 << 20}],
    }
    if addresses is not None:
        entry["addresses"] = addresses
    return entry


@pytest.mark.parametrize("parts, expected", [
    (("tag", "role", "web"), "tag_role_web"),
    (("tag", "env", "prod-eu.1"), "tag_env_prod_eu_1"),
    (("hypervisor", "192.168.250.11"), "hypervisor_192_168_250_11"),
    (("tag", "owner", "a b/c@d"), "tag_owner_a_b_c_d"),
    (("tag", None, "web"), "tag_web"),
    (("tag", "", "web"), "tag_web"),
    (("state", 3), "state_3"),
])
def test_group_names_are_safe_and_drop_empty_parts(parts, expected):
    assert group_name(*parts) == expected


def test_a_group_name_has_only_letters_digits_and_underscores():
    assert re.fullmatch(r"[A-Za-z0-9_]+", group_name("tag", "ünïcode", "x;y|z")) and group_name("tag", "ü") == "tag__"


@pytest.mark.parametrize("uri, expected", [
    (HV1, "hv1"),
    (HV2, "192.168.250.11"),
    ("qemu+tls://hv3.example.net/system", "hv3.example.net"),
    ("qemu:///system", "localhost"),
    ("test:///default", "localhost"),
])
def test_a_hypervisor_is_named_by_its_host(uri, expected):
    assert hypervisor_name(uri) == expected


def test_a_local_socket_uri_is_named_by_the_third_part_from_the_end_of_the_socket_path():
    """What hypervisor_name returns today for the test bed's socket layout (.../hv1/run/libvirt/libvirt-sock): the
    path part three from the end, 'run' - not 'hv1', and not 'localhost' (see the report about this)."""
    assert hypervisor_name(TESTBED_SOCKET) == "run"
    assert hypervisor_name("qemu+unix:///system?socket=/srv/hvX/libvirt-sock") == "srv"
    assert hypervisor_name("qemu+unix:///system?socket=/nonexistent.sock") == "/nonexistent.sock"


def test_the_first_ipv4_address_wins_over_ipv6_and_over_loopback_and_link_local():
    addresses = {
        "52:54:00:00:00:01": [address("fe80::5054:ff:fe00:1", "ipv6", prefix=64), address("127.0.0.1", source="agent"),
                              address("2001:db8::10", "ipv6", prefix=64)],
        "52:54:00:00:00:02": [address("10.0.0.5"), address("10.0.0.6", source="agent")],
    }
    assert first_address(addresses) == "10.0.0.5"


def test_without_ipv4_the_first_routable_ipv6_address_is_taken():
    addresses = {"52:54:00:00:00:01": [address("::1", "ipv6", "agent", 128), address("fe80::1", "ipv6", prefix=64),
                                       address("2001:db8::10", "ipv6", prefix=64)]}
    assert first_address(addresses) == "2001:db8::10"


def test_no_usable_address_is_none():
    assert first_address({}) is None
    assert first_address({"52:54:00:00:00:01": []}) is None
    assert first_address({"52:54:00:00:00:01": [address("127.0.0.1"), address("fe80::1", "ipv6", prefix=64)]}) is None


def test_an_ipv4_link_local_address_is_not_taken():
    addresses = {"52:54:00:00:00:01": [address("169.254.10.20", source="agent"), address("10.0.0.5", source="agent")]}
    assert first_address(addresses) == "10.0.0.5"


@pytest.mark.parametrize("state, active, filters, expected", [
    ("running", True, {"state": "running"}, True),
    ("shutoff", False, {"state": "running"}, False),
    ("paused", True, {"state": "running"}, True),  # an active paused guest counts as running
    ("paused", True, {"state": ["paused"]}, True),
    ("running", True, {"state": ["paused"]}, False),
    ("shutoff", False, {"state": ["running", "shutoff"]}, True),
    ("shutoff", False, {"state": ("paused",)}, False),
    ("shutoff", False, {"state": []}, True),  # no state filter
    ("shutoff", False, {}, True),
    ("shutoff", False, None, True),
])
def test_state_filter_takes_a_name_or_a_list(state, active, filters, expected):
    assert matches(guest("g", state=state, active=active), filters) is expected


def test_managed_only_leaves_out_guests_without_the_marker():
    assert matches(guest("ours", managed=True), {"managed_only": True})
    assert not matches(guest("theirs", managed=False), {"managed_only": True})
    assert matches(guest("theirs", managed=False), {"managed_only": False})
    assert not matches(guest("ours-off", state="shutoff", managed=True), {"managed_only": True, "state": "running"})


def test_a_guest_becomes_a_host_with_every_kvmfleet_var_and_its_address():
    addresses = {"52:54:00:00:00:01": [address("192.168.122.10")]}
    web = guest("web1", tags={"role": "web"}, addresses=addresses)
    [(hostname, host_vars, _groups)] = inventory_hosts(HV1, [web])
    assert hostname == "web1"
    assert set(host_vars) == HOST_VARS | {"ansible_host"}
    assert host_vars == {"kvmfleet_name": "web1", "kvmfleet_uuid": "uuid-web1", "kvmfleet_state": "running",
                         "kvmfleet_hypervisor": "hv1", "kvmfleet_uri": HV1, "kvmfleet_managed": True,
                         "kvmfleet_tags": {"role": "web"}, "kvmfleet_spec": web["spec"],
                         "kvmfleet_addresses": addresses, "ansible_host": "192.168.122.10"}


def test_without_an_address_there_is_no_ansible_host():
    for entry in (guest("off", state="shutoff", addresses={}), guest("unasked")):  # no address; addresses not read
        [(_hostname, host_vars, _groups)] = inventory_hosts(HV1, [entry])
        assert set(host_vars) == HOST_VARS and host_vars["kvmfleet_addresses"] == {}


def test_groups_are_hypervisor_state_and_tags_with_a_value_group_only_for_valued_tags():
    entry = guest("web1", tags={"role": "web", "canary": None, "env": "prod-eu"})
    [(_hostname, _vars, groups)] = inventory_hosts(HV2, [entry])
    assert groups == ["hypervisor_192_168_250_11", "state_running", "tag_canary", "tag_env", "tag_env_prod_eu",
                      "tag_role", "tag_role_web"]
    [(_hostname, _vars, groups)] = inventory_hosts(HV1, [guest("plain", state="paused", managed=False)])
    assert groups == ["hypervisor_hv1", "state_paused"]


def test_a_name_another_hypervisor_has_becomes_name_at_hypervisor():
    hosts = inventory_hosts(HV2, [guest("web1"), guest("db1")], taken={"web1", "cache1"})
    assert [hostname for hostname, _vars, _groups in hosts] == ["web1@192.168.250.11", "db1"]
    assert hosts[0][1]["kvmfleet_name"] == "web1"  # the guest's own name stays in its vars
    assert inventory_hosts(HV1, [guest("web1")], taken=())[0][0] == "web1"
