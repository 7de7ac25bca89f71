"""The GitOps export (issue 21): which hypervisor lists each guest, what the files say, and that nothing is written
outside the target directory, over a file the export did not write, or half-way."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._export import (
    MARK,
    dump_yaml,
    plan_files,
    run_export,
    write_files,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError


def guest(name, active=False, secrets=(), **spec):
    return {"name": name, "uuid": "%08d-0000-4000-8000-000000000000" % len(name), "active": active,
            "secrets": list(secrets), "spec": dict({"name": name, "memory": "256MiB", "managed": False}, **spec)}


HYPERVISORS = [
    {"name": "hv1", "uri": "qemu+tls://hv1/system", "guests": [guest("web1", True), guest("db1")]},
    {"name": "hv2", "uri": "qemu+tls://hv2/system", "guests": [guest("db1", True), guest("vnc1", secrets=[
        "graphics[0].password"], graphics=[{"type": "vnc", "autoport": True}])]},
    {"name": "hv3", "guests": []},
]


def parsed(item):
    return yaml.safe_load(item["text"])


def test_each_guest_is_listed_once_where_it_runs_with_its_identity_and_no_secret():
    files = {f["hypervisor"]: f for f in plan_files("/x", HYPERVISORS, dump_yaml)}
    assert [g["name"] for g in parsed(files["hv1"])["guests_list"]] == ["web1"]
    assert [g["name"] for g in parsed(files["hv2"])["guests_list"]] == ["db1", "vnc1"]
    assert parsed(files["hv3"]) == {"guests_list": []}
    web1 = parsed(files["hv1"])["guests_list"][0]
    assert list(web1)[:2] == ["name", "uuid"] and "managed" not in web1
    assert files["hv2"]["notes"][0].startswith("db1: also defined on hv1; listed here, where it runs")
    assert any("vnc1: graphics[0].password is set on the host and not written here" in n and "vault_vnc1" in n
               for n in files["hv2"]["notes"])
    assert "password:" not in files["hv2"]["text"].replace('password: "{{', "")
    assert files["hv1"]["text"].startswith("---\n" + MARK) and "qemu+tls://hv1/system" in files["hv1"]["text"]
    assert files["hv2"]["path"] == os.path.join("host_vars", "hv2.yml")


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "..", "", "tab\there", "new\nline"])
def test_a_hypervisor_name_that_is_not_a_plain_file_name_is_refused(name):
    with pytest.raises(SpecError) as info:
        plan_files("/x", [{"name": name, "guests": []}], dump_yaml)
    assert info.value.option == "hypervisors[0].name"


def test_files_are_written_once_atomically_and_check_mode_writes_nothing(tmp_path):
    params = {"dest": str(tmp_path), "hypervisors": HYPERVISORS, "force": False}
    planned = run_export(None, params, True)
    assert planned["changed"] and [f["state"] for f in planned["files"]] == ["created"] * 3
    assert not (tmp_path / "host_vars").exists(), "check mode wrote something"
    first = run_export(None, params, False)
    assert [f["state"] for f in first["files"]] == ["created"] * 3 and len(first["diff"]) == 3
    assert sorted(os.listdir(tmp_path / "host_vars")) == ["hv1.yml", "hv2.yml", "hv3.yml"], "a temporary file stayed"
    again = run_export(None, params, False)
    assert not again["changed"] and again["diff"] == []
    edited = dict(params, hypervisors=[dict(HYPERVISORS[0], guests=[guest("web1", True, memory="512MiB")])])
    assert [f["state"] for f in run_export(None, edited, False)["files"]] == ["changed"]


def test_a_file_the_export_did_not_write_is_kept_unless_forced(tmp_path):
    (tmp_path / "host_vars").mkdir()
    mine = tmp_path / "host_vars" / "hv1.yml"
    mine.write_text("---\nguests_list: []  # by hand\n")
    files = plan_files(str(tmp_path), HYPERVISORS, dump_yaml)
    with pytest.raises(UserError) as info:
        write_files(str(tmp_path), files, False, False)
    assert "not written by the export" in str(info.value) and "force: true" in str(info.value)
    assert mine.read_text() == "---\nguests_list: []  # by hand\n"
    assert not (tmp_path / "host_vars" / "hv2.yml").exists(), "a file was written before the refusal"
    written = write_files(str(tmp_path), files, True, False)
    assert [f["state"] for f in written] == ["changed", "created", "created"]


def test_nothing_is_written_through_a_symbolic_link_or_outside_the_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "inventory"
    dest.mkdir()
    (dest / "host_vars").symlink_to(elsewhere)
    files = plan_files(str(dest), HYPERVISORS, dump_yaml)
    with pytest.raises(UserError) as info:
        write_files(str(dest), files, True, False)
    assert "symbolic link" in str(info.value)
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(SpecError) as relative:
        write_files("relative/dir", files, True, False)
    assert relative.value.option == "dest"


def test_networks_and_pools_go_with_their_state_and_autostart():
    hv = {"name": "hv1", "guests": [], "networks": [
        {"name": "lab", "active": True, "autostart": True, "persistent": True,
         "spec": {"name": "lab", "forward": "isolated", "ipv4": {"address": "10.1.0.1/24"}}},
        {"name": "tmp", "active": True, "autostart": False, "persistent": False, "spec": {"name": "tmp"}},
        {"name": "sriov", "active": False, "autostart": False, "persistent": True, "spec": None}],
        "pools": [{"name": "images", "active": False, "autostart": False,
                   "spec": {"name": "images", "type": "dir", "path": "/srv/images"}}]}
    item = plan_files("/x", [hv], dump_yaml)[0]
    data = parsed(item)
    assert data["networks_list"] == [{"name": "lab", "forward": "isolated", "ipv4": {"address": "10.1.0.1/24"},
                                      "state": "active", "autostart": True}]
    assert data["storage_pools"] == [{"name": "images", "type": "dir", "path": "/srv/images", "state": "inactive",
                                      "autostart": False}]
    assert item["notes"] == ["network tmp is transient (libvirt keeps no definition of it) and is not listed",
                             "network sriov is of a kind the network module does not manage, and is not listed"]
    assert "networks_list" not in parsed(plan_files("/x", [{"name": "hv2", "guests": []}], dump_yaml)[0])
