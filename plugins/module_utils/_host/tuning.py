# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the kernel settings a hypervisor needs, over a root directory (``/`` on a host, a tree
of plain files in tests): whether KVM is usable and why not, nested virtualisation, KSM and hugepages.

Each setting is applied now (a sysfs or procfs file) and kept across reboots by a file under /etc
that says at its top that Ansible manages it. What the kernel takes only at a module reload (nested)
or at boot (1G hugepages) is written to its file and reported as pending, never forced.

``plan_tuning`` is pure over (what the files hold, what is wanted): it returns the file plan (_plan.FileWrite
each), and ``TuningRunner`` makes the writes (_files.write_files, taken back if one fails).
"""

from __future__ import annotations

import os

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._files import write_files
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import FileWrite
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner

HEADER = "# Managed by Ansible (kvmfleet.libvirt.hypervisor): changes made here by hand are overwritten.\n"
KSM = "sys/kernel/mm/ksm/"
NR_2M = "proc/sys/vm/nr_hugepages"
NODE_2M = "sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages"
NR_1G = "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
FILES = {
    "nested": "etc/modprobe.d/kvmfleet-nested.conf",
    "ksm": "etc/tmpfiles.d/kvmfleet-ksm.conf",
    "hugepages": "etc/sysctl.d/80-kvmfleet-hugepages.conf",
    "hugepages_nodes": "etc/tmpfiles.d/kvmfleet-hugepages.conf",
    "hugepages_1g": "etc/default/grub.d/80-kvmfleet-hugepages.cfg",
}
VENDOR_MODULE = {"intel": "kvm_intel", "amd": "kvm_amd"}
# merge_across_nodes first (the kernel takes it only while nothing is merged), run last.
KSM_KEYS = ("merge_across_nodes", "pages_to_scan", "sleep_millisecs", "run")


class Root:
    """Files under a root directory; ``read`` gives None for a file that is not there."""

    def __init__(self, path="/"):
        self.path = path

    def full(self, rel):
        return os.path.join(self.path, rel)

    def read(self, rel):
        try:
            with open(self.full(rel), encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, rel):
        return os.path.exists(self.full(rel))

    def value(self, rel):
        text = self.read(rel)
        return None if text is None else text.strip()


def _write(root, rel, before, after, persistent, what):
    """One write under ``root``: a kernel knob now (``persistent`` False) or a file kept across reboots; ``rel``
    is its path below the root, shown as /``rel``."""
    return FileWrite(root.full(rel), before, after, persistent=persistent, what=what, header="/" + rel, rel=rel)


def _int(option, value, low=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(option, value, "expected an integer of at least %d" % low)
    return value


# ---- KVM ----------------------------------------------------------------------------------------------

def cpu_vendor(cpuinfo):
    """'intel' (vmx), 'amd' (svm) or None, from /proc/cpuinfo's flags."""
    for line in (cpuinfo or "").splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            if "vmx" in flags:
                return "intel"
            if "svm" in flags:
                return "amd"
            return None
    return None


def kvm_usability(root):
    """{"usable", "vendor", "reasons"}: every reason KVM cannot be used here, each saying what to check."""
    vendor = cpu_vendor(root.read("proc/cpuinfo"))
    reasons = []
    if vendor is None:
        reasons.append("the CPU reports neither vmx (Intel VT-x) nor svm (AMD-V) in /proc/cpuinfo: virtualization "
                       "is off in the firmware, or this machine is itself a guest without nested virtualization")
    if not root.exists("sys/module/kvm"):
        reasons.append("the kvm kernel module is not loaded (modprobe kvm)")
    elif vendor and not root.exists("sys/module/" + VENDOR_MODULE[vendor]):
        reasons.append("the %s kernel module is not loaded (modprobe %s)" % (VENDOR_MODULE[vendor], VENDOR_MODULE[vendor]))
    if not root.exists("dev/kvm"):
        reasons.append("/dev/kvm does not exist")
    return {"usable": not reasons, "vendor": vendor, "reasons": reasons}


# ---- nested -------------------------------------------------------------------------------------------

def _yes(text):
    return None if text is None else text.strip() in ("Y", "1", "y")


def plan_nested(root, wanted, vendor):
    """(writes, facts). The modprobe option is written; the loaded module keeps its value until it is
    reloaded with no guest running (or the host reboots), which the facts say instead of doing it."""
    modules = [VENDOR_MODULE[vendor]] if vendor else sorted(VENDOR_MODULE.values())
    current = None
    for module in modules:
        value = _yes(root.read("sys/module/%s/parameters/nested" % module))
        if value is not None:
            current = value
    facts = {"enabled": current, "wanted": wanted, "reload_required": False, "modules": modules}
    if wanted is None:
        return [], facts
    text = HEADER + "".join("options %s nested=%d\n" % (module, 1 if wanted else 0) for module in modules)
    writes = _file(root, FILES["nested"], text, "nested")
    facts["reload_required"] = current is not None and current != wanted
    return writes, facts


# ---- KSM ----------------------------------------------------------------------------------------------

def ksm_wanted(ksm):
    """The KSM sysfs values wanted ({key: int}), from the ``ksm`` option."""
    wanted = {}
    if ksm.get("merge_across_nodes") is not None:
        wanted["merge_across_nodes"] = 1 if ksm["merge_across_nodes"] else 0
    for key in ("pages_to_scan", "sleep_millisecs"):
        if ksm.get(key) is not None:
            wanted[key] = _int("ksm." + key, ksm[key], 1 if key == "pages_to_scan" else 0)
    if ksm.get("enabled") is not None:
        wanted["run"] = 1 if ksm["enabled"] else 0
    return wanted


def plan_ksm(root, ksm):
    """(writes, facts) for KSM: each knob now, and a tmpfiles.d file that sets them at boot."""
    if not root.exists(KSM + "run"):
        raise SpecError("ksm", "(given)", "this kernel has no KSM (%s is missing)" % ("/" + KSM + "run"))
    wanted = ksm_wanted(ksm)
    writes = []
    current = {key: root.value(KSM + key) for key in KSM_KEYS}
    merge_change = "merge_across_nodes" in wanted and current["merge_across_nodes"] != str(wanted["merge_across_nodes"])
    if merge_change and (root.value(KSM + "pages_shared") or "0") != "0":
        # The kernel refuses merge_across_nodes while pages are merged: unmerge (run = 2) first, and
        # set run again afterwards (to what is wanted, or back to what it was).
        writes.append(_write(root, KSM + "run", current["run"], "2\n", False, "ksm.run (unmerge first)"))
        wanted.setdefault("run", int(current["run"] or 0))
        current["run"] = "2"
    for key in KSM_KEYS:
        if key in wanted and current[key] != str(wanted[key]):
            writes.append(_write(root, KSM + key, current[key], "%d\n" % wanted[key], False, "ksm." + key))
    text = HEADER + "".join("w /%s%s - - - - %d\n" % (KSM, key, wanted[key]) for key in KSM_KEYS if key in wanted)
    writes += _file(root, FILES["ksm"], text, "ksm")
    return writes


def ksm_facts(root, page_size=None):
    """KSM as the kernel reports it: run state, tunables, pages shared and the memory that saves."""
    if not root.exists(KSM + "run"):
        return None
    values = {key: root.value(KSM + key) for key in KSM_KEYS + ("pages_shared", "pages_sharing", "full_scans")}
    numbers = {key: int(value) if value and value.lstrip("-").isdigit() else None for key, value in values.items()}
    page_size = page_size or os.sysconf("SC_PAGE_SIZE")
    sharing = numbers["pages_sharing"] or 0
    return {
        "enabled": numbers["run"] == 1,
        "run": numbers["run"],
        "pages_to_scan": numbers["pages_to_scan"],
        "sleep_millisecs": numbers["sleep_millisecs"],
        "merge_across_nodes": None if numbers["merge_across_nodes"] is None else numbers["merge_across_nodes"] == 1,
        "pages_shared": numbers["pages_shared"],
        "pages_sharing": sharing,
        "full_scans": numbers["full_scans"],
        "saved_bytes": sharing * page_size,  # pages_sharing: how many more sites share a page (the kernel's doc)
    }


# ---- hugepages ----------------------------------------------------------------------------------------

def plan_hugepages(root, hugepages):
    """(writes, facts) for hugepages: 2M pages now (in total or per NUMA node) and at boot; 1G pages
    only through the kernel command line, so reported as needing a reboot until the kernel has them."""
    writes, facts = [], {"reboot_required": False, "reasons": []}
    count, nodes, count_1g = hugepages.get("count"), hugepages.get("per_node"), hugepages.get("count_1g")
    if count is not None and nodes:
        raise SpecError("hugepages.per_node", nodes, "give either count (all nodes) or per_node, not both")
    if count is not None:
        count = _int("hugepages.count", count)
        current = root.value(NR_2M)
        if current != str(count):
            writes.append(_write(root, NR_2M, current, "%d\n" % count, False, "hugepages (2M)"))
        writes += _file(root, FILES["hugepages"], HEADER + "vm.nr_hugepages = %d\n" % count, "hugepages")
    if nodes:
        lines = []
        for node, wanted in sorted(((_node("hugepages.per_node", n), v) for n, v in nodes.items())):
            wanted = _int("hugepages.per_node.%d" % node, wanted)
            rel = NODE_2M % node
            if not root.exists(rel):
                raise SpecError("hugepages.per_node", node, "this host has no NUMA node %d (no %s)" % (node, "/" + rel))
            current = root.value(rel)
            if current != str(wanted):
                writes.append(_write(root, rel, current, "%d\n" % wanted, False, "hugepages (2M) on node %d" % node))
            lines.append("w /%s - - - - %d\n" % (rel, wanted))
        writes += _file(root, FILES["hugepages_nodes"], HEADER + "".join(lines), "hugepages")
    if count_1g is not None:
        count_1g = _int("hugepages.count_1g", count_1g)
        text = HEADER + ('GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT hugepagesz=1G hugepages=%d"\n'
                         % count_1g)
        writes += _file(root, FILES["hugepages_1g"], text, "hugepages")
        have = int(root.value(NR_1G) or 0)
        if have != count_1g:
            facts["reboot_required"] = True
            facts["reasons"].append("1G hugepages: %d wanted, %d reserved; the kernel reserves them at boot: "
                                    "regenerate the boot loader's configuration (update-grub or grub2-mkconfig) and "
                                    "reboot" % (count_1g, have))
    return writes, facts


def _node(option, value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SpecError(option, value, "expected NUMA node numbers (0, 1, ...) as keys") from None


def hugepage_facts(root, hugepages):
    """What the kernel reserved, against what was asked (a reservation may fall short: memory is
    fragmented or too small), and the 1G count."""
    facts = {"reserved_2m": int(root.value(NR_2M) or 0), "reserved_1g": int(root.value(NR_1G) or 0), "per_node": {},
             "short": []}
    for node in sorted(int(n) for n in (hugepages.get("per_node") or {})):
        facts["per_node"][node] = int(root.value(NODE_2M % node) or 0)
    if hugepages.get("count") is not None and facts["reserved_2m"] < hugepages["count"]:
        facts["short"].append("hugepages.count: asked for %d 2M pages, the kernel reserved %d (memory is short or "
                              "fragmented; a reservation at boot is more reliable)" % (hugepages["count"],
                                                                                       facts["reserved_2m"]))
    for node, wanted in (hugepages.get("per_node") or {}).items():
        got = facts["per_node"][int(node)]
        if got < wanted:
            facts["short"].append("hugepages.per_node.%s: asked for %d 2M pages, the kernel reserved %d" % (node, wanted, got))
    return facts


# ---- files and writes ----------------------------------------------------------------------------------

def _file(root, rel, text, what):
    before = root.read(rel)
    if before == text:
        return []
    return [_write(root, rel, before, text, True, what)]


def plan_tuning(root, params):
    """(writes, facts) for the module's parameters; raises SpecError before anything is written."""
    kvm = kvm_usability(root)
    writes, facts = [], {"kvm": kvm, "reboot_required": False, "reasons": []}
    nested_writes, facts["nested"] = plan_nested(root, params.get("nested"), kvm["vendor"])
    writes += nested_writes
    if facts["nested"]["reload_required"]:
        facts["reasons"].append("nested virtualization: %s is loaded with nested=%s; it takes the new value when "
                                "reloaded with no guest running (modprobe -r, then modprobe), or at the next boot"
                                % ("/".join(facts["nested"]["modules"]), "Y" if facts["nested"]["enabled"] else "N"))
    if params.get("ksm"):
        writes += plan_ksm(root, params["ksm"])
    if params.get("hugepages"):
        hp_writes, hp_facts = plan_hugepages(root, params["hugepages"])
        writes += hp_writes
        facts["reasons"] += hp_facts["reasons"]
        facts["reboot_required"] = hp_facts["reboot_required"]
    return writes, facts


class TuningRunner(Runner):
    """The host_tuning module's run over the host's files (``root``: a Root, by default the one ``params['root']``
    names): plan, write (unless check mode), read back; the result dict. No libvirt connection."""

    def __init__(self, conn, params, check, tmpdir=None, root=None):
        super().__init__(conn, params, check, tmpdir)
        self.root = root or Root(params.get("root") or "/")

    def run(self):
        root, params = self.root, self.params
        writes, facts = plan_tuning(root, params)
        if params.get("require_kvm") and not facts["kvm"]["usable"]:  # before anything is written
            raise SpecError("require_kvm", True, "KVM is not usable here: %s. Set require_kvm: false (the hypervisor "
                                                 "role's hypervisor_allow_emulation: true) to run guests with "
                                                 "virt_type: qemu" % "; ".join(facts["kvm"]["reasons"]))
        if not self.check:
            with self.undo.guard("tuning the host"):
                write_files(writes, self.undo)
        result = dict(facts, changed=bool(writes), actions=[w.action for w in writes],
                      diff=[w.diff() for w in writes if w.persistent],
                      files=sorted(w.header for w in writes if w.persistent))
        result["ksm"] = ksm_facts(root)
        hugepages = params.get("hugepages") or {}
        result["hugepages"] = hugepage_facts(root, hugepages)
        if not self.check:
            for short in result["hugepages"]["short"]:
                self.warn(short)
        return self.finish(result)
