"""Guest profiles and the readable plan (the guests role's filters), over plain data."""

from __future__ import annotations

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles, plan_lines
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

PROFILES = {
    "base": {"virt_type": "kvm", "memory": "1GiB", "tags": {"env": "prod"}, "interfaces": [{"network": "lan"}]},
    "web": {"vcpus": 2, "tags": {"role": "web"}, "interfaces": [{"network": "dmz"}, {"network": "lan"}]},
}


def test_profiles_merge_in_order_under_the_guest():
    [guest] = apply_profiles([{"name": "w1", "profiles": ["base", "web"], "memory": "2GiB", "tags": {"env": "dev"}}],
                             PROFILES)
    assert guest == {"name": "w1", "virt_type": "kvm", "memory": "2GiB", "vcpus": 2,
                     "tags": {"env": "dev", "role": "web"},  # dicts merge, the guest's own value wins
                     "interfaces": [{"network": "dmz"}, {"network": "lan"}]}  # lists are replaced, not merged
    assert apply_profiles([{"name": "b", "profile": "base"}], PROFILES)[0]["memory"] == "1GiB"
    assert apply_profiles([{"name": "plain"}], PROFILES) == [{"name": "plain"}]


def test_profiles_are_not_changed_by_merging():
    before = repr(PROFILES)
    merged = apply_profiles([{"name": "a", "profile": "base"}, {"name": "b", "profile": "base"}], PROFILES)
    merged[0]["tags"]["env"] = "changed"
    assert repr(PROFILES) == before and merged[1]["tags"]["env"] == "prod"


def test_an_unknown_profile_names_the_guest_and_the_profiles_there_are():
    with pytest.raises(UserError, match=r"guests_list\[1\] \(x\): profile 'db' is not in guests_profiles \(it has: base, web\)"):
        apply_profiles([{"name": "ok", "profile": "base"}, {"name": "x", "profile": "db"}], PROFILES)


def test_the_plan_reads_as_short_lines():
    result = {"guests": [
        {"name": "new", "created": True, "changed": True},
        {"name": "mem", "changed": True, "changes": ["current_memory: 1GiB -> 2GiB"], "applied_live": ["current_memory: 2GiB"]},
        {"name": "cpu", "changed": True, "changes": ["machine: pc -> q35"], "reboot_required": True,
         "reasons": ["machine: pc -> q35"]},
        {"name": "same", "changed": False},
        {"name": "waits", "changed": False, "reboot_required": True, "reasons": ["vcpus: 2 > 1 (max_vcpus)"]},
        {"name": "gone", "changed": True, "removed": True},
        {"name": "bad", "changed": False, "error": "option memory: got 'x'"},
    ], "summary": {"created": 1, "updated": 2, "unchanged": 2, "removed": 1, "failed": 1}}
    assert plan_lines(result, "hv1") == [
        "hv1: + new",
        "hv1: ~ mem: current_memory: 1GiB -> 2GiB (live: current_memory: 2GiB)",
        "hv1: ~ cpu: machine: pc -> q35 (at next boot: machine: pc -> q35)",
        "hv1: > waits: waits for its next boot: vcpus: 2 > 1 (max_vcpus)",
        "hv1: - gone",
        "hv1: ! bad: option memory: got 'x'",
        "hv1: 1 to create, 2 to change, 1 to remove, 2 unchanged, 1 failed, 2 waiting for a reboot",
    ]
