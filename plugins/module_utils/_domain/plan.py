# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the plan. ``plan_domain`` applies a normalised spec to the guest's current XML and says
what changed and how each change can reach a running guest (its live kind). Pure: no libvirt calls.
"""

from __future__ import annotations

import copy

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import IGNITION_FWCFG
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.arch import (
    X86,
    cdrom_bus,
    check_runs,
    check_spec,
    default_cpu,
    default_machine,
    default_features,
    tpm_model,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.device_kind import LIVE_ATTACH, LIVE_DETACH, LIVE_UPDATE
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND, DEVICE_KINDS, AnyOf
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import DISK_SOURCE, Disks, disk_dev_name
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import (
    content_node,
    drop_content_node,
    mark_nvram_reset,
    mask_content_hashes,
    reconcile_content_hash,
    reconcile_metadata,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.requirements import reconcile_requirements
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import (
    DOMAIN_FIELDS,
    FIELD,
    LIVE_SEED,
    NVRAM_RESET_KEYS,
    SECRET_MASK,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    TEXT,
    Change,
    ensure_path,
    prune_empty,
    reconcile_fields,
)

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string


class DeviceOp:
    """A device to attach, detach or update on a running guest, or to modify, add or remove (next boot only: a
    kind a running guest cannot take or give up, ``DeviceKind.hotplug``); the persistent config is always redefined.
    ``live`` is the LiveKind, None for the next-boot ones."""

    LIVE = {"attach": LIVE_ATTACH, "detach": LIVE_DETACH, "update": LIVE_UPDATE}

    def __init__(self, op, kind, key, label, changes=()):
        self.op, self.kind, self.key, self.label, self.changes = op, kind, key, label, list(changes)
        self.live = self.LIVE.get(op)

    def __repr__(self):
        return "DeviceOp(%s %s)" % (self.op, self.label)


class GuestPlan(Plan):
    """What converging a guest changes in its persistent config: a document plan (_plan.Plan: before and after,
    the Changes, secrets masked in --diff), with the device operations, and what the plan derived (the parsed
    document ``root``, the NIC MACs, the seed's target dev)."""

    def __init__(self, before, root, changes, device_ops, created, seed_dev=None, macs=(), dropped_seed=None):
        super().__init__("domain (persistent config)", before, to_string(copy.deepcopy(root)), changes, created,
                         mask=mask_secrets)
        self.root = root
        self.device_ops = device_ops
        self.seed_dev = seed_dev
        self.macs = list(macs)  # the MACs of the declared NICs, in order
        self.dropped_seed = dropped_seed  # the source of a seed cdrom detached because cloud_init is no longer declared


def _secret_fields(kind):
    return [field for field in kind.fields if field.secret]


def mask_secrets(xml, compare_to=None):
    """The XML with every secret field (as the tables declare them) replaced by a mask; one that
    differs from ``compare_to`` (the before side of a diff) shows as changed, never in clear."""
    if not xml:
        return xml
    root = parse_xml(xml)
    old_root = parse_xml(compare_to) if compare_to else None
    for kind in DEVICE_KINDS:
        secret = _secret_fields(kind)
        devices = root.find("devices")
        if not secret or devices is None:
            continue
        old = {}
        if old_root is not None and old_root.find("devices") is not None:
            old = {kind.key_of(e): e for e in kind.select(old_root.find("devices"))}
        for elem in kind.select(devices):
            before = old.get(kind.key_of(elem))
            for field in secret:
                value = field.read(elem)
                if value is None:
                    continue
                changed = old_root is not None and (before is None or field.read(before) != value)
                field.write(elem, SECRET_MASK + (" (changed)" if changed else ""))
    mask_content_hashes(root)
    return to_string(root)


def secret_attributes():
    """XML attribute names the tables declare secret (an escape-hatch edit of one is masked too)."""
    return {field.where for kind in DEVICE_KINDS for field in _secret_fields(kind) if field.where != TEXT}


def _reconcile_device_list(devices, kind, specs, guest_name, taken_macs):
    changes, ops = [], []
    kept = kind.kept(devices)
    for index, spec in enumerate(specs):
        key = spec.get("_key", spec.get("mac"))  # a NIC's identity is its MAC (given, or matched later)
        if key is not None and key in kept:
            raise SpecError(kind.option(index).rstrip("."), kind.label(key),
                            "the guest's %s (type %s) is of a kind these options do not express, so it is kept as it "
                            "is; change or remove it with xml_edits" % (kind.label(key), kept[key].get("type")))
    if kept:  # a derived MAC avoids the kept NICs' too
        taken_macs = AnyOf(taken_macs, kept)
    pairs, removed = kind.match(kind.select(devices), specs, guest_name, taken_macs)
    for elem in removed:
        key = kind.key_of(elem)
        devices.remove(elem)
        changes.append(Change(kind.label(key), "present", None, LIVE_DETACH if kind.hotplug else None))
        ops.append(DeviceOp("detach" if kind.hotplug else "remove", kind.name, key, kind.label(key)))
    for spec, elem in pairs:
        key = spec["_key"]
        if elem is None:
            elem = kind.build(spec)
            _append_device(devices, elem, kind)
            reconcile_fields(elem, kind.fields, spec)
            changes.append(Change(kind.label(key), None, "present", LIVE_ATTACH if kind.hotplug else None))
            ops.append(DeviceOp("attach" if kind.hotplug else "add", kind.name, key, kind.label(key)))
            continue
        dev_changes = reconcile_fields(elem, kind.fields, spec, kind.label(key) + ".")
        for field in kind.fields:
            if field.path and field.where != PRESENCE:
                prune_empty(elem, field.path)
        if dev_changes:
            changes.extend(dev_changes)
            live = kind.live_keys(elem)
            changed_keys = {c.what.rsplit(".", 1)[-1] for c in dev_changes}
            ops.append(DeviceOp("update" if changed_keys <= live else "modify", kind.name, key,
                                kind.label(key), dev_changes))
    return changes, ops, pairs


def _clamp_current_vcpus(root):
    """A lowered max_vcpus takes the current count down with it (libvirt refuses current > maximum)."""
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.get("current") and int(vcpu.get("current")) >= int(vcpu.text):
        vcpu.attrib.pop("current")


def _complete_topology(root):
    """libvirt needs sockets, cores and threads together: one declared alone brings the others as 1."""
    topology = root.find("cpu/topology")
    if topology is not None:
        for name in ("sockets", "cores", "threads"):
            if topology.get(name) is None:
                topology.set(name, "1")


def _for_arch(spec, arch, caps):
    """The spec as the guest's architecture takes it: a cdrom declared without a bus goes on the architecture's
    (arch.cdrom_bus: SATA on x86, SCSI on aarch64, ppc64 and s390x). The spec itself is not changed."""
    disks = spec.get("disks")
    if arch in X86 or not disks or not any(d.get("_default_bus") for d in disks):
        return spec
    bus = cdrom_bus(arch, caps)
    return dict(spec, disks=[dict(d, bus=bus) if d.get("_default_bus") else d for d in disks])


def _arch_tpm(root, original, arch, caps):
    """A TPM this plan adds to a guest of another architecture than x86 gets that architecture's model (arch.tpm_model:
    aarch64 tpm-tis, ppc64 tpm-spapr) instead of x86's CRB interface, or libvirt's default."""
    tpm = root.find("devices/tpm")
    if tpm is None or arch in X86 or (original is not None and original.find("devices/tpm") is not None):
        return
    model = tpm_model(arch, caps)
    if model:
        tpm.set("model", model)
    else:
        tpm.attrib.pop("model", None)


def _append_device(devices, elem, kind):
    """Place a new device after the last one of its kind (libvirt sorts them anyway; diffs read better)."""
    same = devices.findall(kind.tag)
    if same:
        same[-1].addnext(elem)
    else:
        devices.append(elem)


def plan_domain(current_xml, spec, host, disk_formats=None):
    """Apply ``spec`` to ``current_xml`` (None: a new guest). Pure: returns a GuestPlan, touches nothing.

    ``host`` (HostContext, data read before) gives the other guests' MACs and the host's arch (a MAC is
    derived only when derives_mac says so, and its caller has read the host's MACs then); ``disk_formats``
    the format of each disk's existing volume ({dev: format}, from the storage plan) where the spec
    declares none. The spec is not changed.
    """
    created = current_xml is None
    key = caps_key(current_xml, spec, host)
    if created or caps_key(current_xml, {}, host) != key:  # a new guest, or one declared another arch or kind
        check_runs(key[0], key[2], host.arches)
    caps = host.caps_for(key)
    spec = _for_arch(spec, key[0], caps)
    seed_bus = cdrom_bus(key[0], caps)
    check_spec(spec, caps, seed_bus if spec.get("cloud_init") else None,
               None if created else parse_xml(current_xml))
    root = new_domain(spec, host) if created else parse_xml(current_xml)
    original = None if created else copy.deepcopy(root)
    before = "" if created else to_string(copy.deepcopy(root))
    changes = reconcile_fields(root, DOMAIN_FIELDS, spec)
    _arch_tpm(root, original, key[0], caps)
    _clamp_current_vcpus(root)
    _complete_topology(root)
    devices = ensure_path(root, "devices")
    device_ops, macs = [], []
    seed_disk = None
    if spec.get("cloud_init"):
        seed_disk = _seed_disk_spec(spec, _seed_target(devices, spec), seed_bus)
    dropped_seed = None
    if not created and spec.get("cloud_init") is None:
        dropped_seed = _drop_seed(root, devices, spec, changes, device_ops)
    taken = host.macs_except(spec["name"])
    for kind in DEVICE_KINDS:
        specs = spec.get(kind.name)
        if kind.name == "disks":
            if specs is not None and disk_formats:
                specs = [dict(d, format=disk_formats[d["_key"]]) if d.get("format") is None and d["_key"] in disk_formats
                         else d for d in specs]
            if seed_disk is not None:
                specs, kind = (specs + [seed_disk], kind) if specs is not None else ([seed_disk], _OneDisk(seed_disk["_key"]))
        if specs is None:
            continue
        kind_changes, kind_ops, pairs = _reconcile_device_list(devices, kind, specs, spec["name"], taken)
        changes.extend(kind_changes)
        device_ops.extend(kind_ops)
        if kind.name == "interfaces":
            macs = [nic["mac"] for nic, _elem in pairs]
    changes.extend(reconcile_requirements(root, original))
    changes.extend(reconcile_metadata(root, spec.get("tags")))
    if seed_disk is not None:
        attached = any(op.key == seed_disk["_key"] and op.kind == "disks" for op in device_ops)
        changes.extend(reconcile_content_hash(root, "cloud-init", "cloud_init", spec["cloud_init"]["hash"],
                                              None if attached else LIVE_SEED, {"dev": seed_disk["_key"]}))
    if spec.get("ignition"):
        changes.extend(reconcile_ignition(root, spec["ignition"]))
        changes.extend(reconcile_content_hash(root, "ignition", "ignition", spec["ignition"]["hash"]))
    if not created and any(c.what in NVRAM_RESET_KEYS for c in changes):
        mark_nvram_reset(root, True)
    changes.extend(apply_xml_edits(root, spec.get("xml_edits") or []))
    if created:  # a new guest has no "before": list what it is made with
        changes = [Change(c.what, None, c.after, c.live, c.secret, c.field) for c in changes]
    return GuestPlan(before, root, changes, device_ops, created, seed_disk["_key"] if seed_disk else None, macs,
                     dropped_seed)


def caps_key(current_xml, spec, host):
    """The (arch, machine, virt type) whose domain capabilities a guest's plan reads: the spec's, else the guest's
    (or its ``xml``'s), else the host's arch, libvirt's default machine (None) and kvm."""
    source = current_xml if current_xml is not None else spec.get("xml")
    root = parse_xml(source) if source is not None else None
    os_type = root.find("os/type") if root is not None else None
    arch = spec.get("arch") or (os_type.get("arch") if os_type is not None else None) or host.host_arch
    machine = spec.get("machine") or (os_type.get("machine") if os_type is not None else None)
    if machine is None and root is None and default_machine(arch):  # a new guest: the machine new_domain writes
        machine = host.canonical_machine(arch, default_machine(arch))
    virt_type = spec.get("virt_type") or (root.get("type") if root is not None else None) or "kvm"
    return arch, machine, virt_type


def _current_nics(current_xml, spec):
    """The NIC elements a plan starts from: the guest's, or those of the user's ``xml`` for a new guest."""
    source = current_xml if current_xml is not None else spec.get("xml")
    devices = None if source is None else parse_xml(source).find("devices")
    return [] if devices is None else DEVICE_KIND["interfaces"].select(devices)


def derives_mac(current_xml, spec):
    """Whether planning this guest derives a NIC MAC, which must avoid every other guest's on the host: the one
    thing planning needs from libvirt beyond the guest's own XML. Its caller reads the host's MACs first
    (host.read_guest_macs) when it is true, so that plan_domain itself touches nothing."""
    if not spec.get("interfaces"):
        return False
    return DEVICE_KIND["interfaces"].derives_mac(_current_nics(current_xml, spec), spec["interfaces"])


def nic_macs(current_xml, spec, host):
    """The MACs the guest's declared NICs will have, as plan_domain derives them, without the whole plan (a
    fleet checks them across its guests before it converges any). A guest made from the user's ``xml`` or
    edited by ``xml_edits`` is planned whole: that plan may be refused."""
    if spec.get("xml_edits") or (current_xml is None and spec.get("xml")):
        return plan_domain(current_xml, spec, host).macs
    pairs, _removed = DEVICE_KIND["interfaces"].match(_current_nics(current_xml, spec), spec["interfaces"],
                                                      spec["name"], host.macs_except(spec["name"]))
    return [nic["mac"] for nic, _elem in pairs]


# ---- the cloud-init seed cdrom and the Ignition entry ------------------------------------------

def seed_disk(root, devices, name):
    """(element, target dev, source) of the guest's cloud-init seed cdrom: the one its seed metadata names, or, for a
    guest seeded before the dev was recorded, the cdrom of the default seed volume (``<name>-cidata.iso``); None when
    the guest has no seed."""
    node = content_node(root, "cloud-init")
    if node is None:
        return None
    kind = DEVICE_KIND["disks"]
    default = "%s-cidata.iso" % name
    for elem in devices.findall(kind.tag):
        source = DISK_SOURCE.read(elem)
        named = dict(source[1]).get("volume") or (dict(source[1]).get("file") or "").rsplit("/", 1)[-1]
        dev = kind.key_of(elem)
        if elem.get("device") == "cdrom" and (dev == node.get("dev") or (node.get("dev") is None and named == default)):
            return elem, dev, source
    return None


def _drop_seed(root, devices, spec, changes, device_ops):
    """A guest whose description declares its whole disk list (``disks``) and no longer ``cloud_init`` loses its seed:
    the cdrom (its target dev is in the seed's metadata; for a guest seeded before that was recorded, the cdrom of the
    default seed volume) is detached and the seed's metadata goes. Returns the detached cdrom's source, or None.

    The seed is kept when ``disks`` is not given (only what is declared is managed: a task that declares part of a
    guest must not take its seed away), and when ``disks`` names its target dev (the guest read back: its seed is one
    of its disks)."""
    if spec.get("disks") is None or content_node(root, "cloud-init") is None:
        return None
    kind = DEVICE_KIND["disks"]
    seed = seed_disk(root, devices, spec["name"])
    if seed is not None and any(disk["_key"] == seed[1] for disk in spec["disks"]):
        return None
    _attrs, change = drop_content_node(root, "cloud-init")
    changes.append(change)
    if seed is None:
        return None
    elem, dev, source = seed
    devices.remove(elem)
    changes.append(Change(kind.label(dev), "present", None, LIVE_DETACH))
    device_ops.append(DeviceOp("detach", kind.name, dev, kind.label(dev)))
    return source


def _seed_target(devices, spec):
    """The seed cdrom's target dev: declared, or the one the seed volume is attached at, or the next
    free sdX (the same on every run: the attached seed is found by its volume)."""
    seed = spec["cloud_init"]
    if seed["target"]:
        return seed["target"]
    kind = DEVICE_KIND["disks"]
    source_field = DISK_SOURCE
    for elem in kind.select(devices):
        if elem.get("device") == "cdrom" and source_field.read(elem) == seed["source"]:
            return kind.key_of(elem)
    used = {kind.key_of(e) for e in kind.select(devices)} | {d["_key"] for d in spec.get("disks") or []}
    number = 0
    while disk_dev_name("sd", number) in used:
        number += 1
    return disk_dev_name("sd", number)


class _OneDisk(Disks):
    """The disk list narrowed to one target dev: the seed cdrom when ``disks`` is not managed."""

    def __init__(self, dev):
        self.dev = dev

    def select(self, devices):
        return [e for e in devices.findall(self.tag) if self.key_of(e) == self.dev]


def _seed_disk_spec(spec, dev, bus):
    return {"device": "cdrom", "bus": bus, "source": spec["cloud_init"]["source"], "format": "raw",
            "readonly": True, "_key": dev, "dev": dev, "_seed": True}


def reconcile_ignition(root, ignition):
    """The fw_cfg entry CoreOS-family guests read their Ignition config from, plus its content hash."""
    changes = []
    sysinfo = root.find("sysinfo[@type='fwcfg']")
    if sysinfo is None:
        sysinfo = etree.SubElement(root, "sysinfo", type="fwcfg")
    entry = sysinfo.find("entry[@name='%s']" % IGNITION_FWCFG)
    if entry is None:
        entry = etree.SubElement(sysinfo, "entry", name=IGNITION_FWCFG)
    if entry.get("file") != ignition["path"] or entry.text:
        changes.append(Change("ignition.file", entry.get("file"), ignition["path"]))
        entry.text = None
        entry.set("file", ignition["path"])
    return changes


# ---- new guests ------------------------------------------------------------------------------------

def new_domain(spec, host):
    """The document a new guest starts from: the user's ``xml``, or sane defaults (virt-install's). A declared
    ``uuid`` is written in (over one the user's ``xml`` has); without one, libvirt picks it at define."""
    if spec.get("xml"):
        root = parse_xml(spec["xml"])
        if root.tag != "domain":
            raise SpecError("xml", root.tag, "expected a <domain> document")
        ensure_path(root, "name").text = spec["name"]
        set_uuid(root, spec.get("uuid"))
        return root
    virt_type = spec.get("virt_type") or "kvm"
    arch = spec.get("arch") or host.host_arch
    root = etree.Element("domain", type=virt_type)
    etree.SubElement(root, "name").text = spec["name"]
    set_uuid(root, spec.get("uuid"))
    etree.SubElement(root, "memory", unit="KiB").text = str(1024 * 1024)
    etree.SubElement(root, "vcpu", placement="static").text = "1"
    os_elem = etree.SubElement(root, "os")
    os_type = etree.SubElement(os_elem, "type", arch=arch)
    os_type.text = "hvm"
    if not spec.get("machine") and default_machine(arch):  # aarch64: virt, not libvirt's integratorcp
        os_type.set("machine", host.canonical_machine(arch, default_machine(arch)))
    # the features and CPU of the guest's architecture (arch.py), not the host's: x86 has ACPI and the APIC
    names = default_features(arch, spec.get("firmware"))
    if names:
        features = etree.SubElement(root, "features")
        for name in names:
            etree.SubElement(features, name)
    if virt_type == "kvm":
        etree.SubElement(root, "cpu", mode="host-model")
    elif not (spec.get("cpu.mode") or spec.get("cpu.model")):
        cpu = default_cpu(arch, virt_type, host.caps_for(caps_key(None, spec, host)))
        if cpu is not None:
            cpu_elem = etree.SubElement(root, "cpu", mode=cpu["mode"])
            if cpu.get("model"):
                etree.SubElement(cpu_elem, "model", fallback="forbid").text = cpu["model"]
    if spec.get("firmware") == "efi" and spec.get("boot.kernel") and spec.get("secure_boot") is None:
        # A kernel booted directly is loaded by the firmware from QEMU's fw_cfg, not through a signed shim: a
        # firmware with secure boot enforced (libvirt picks one with Microsoft's keys where it is installed, as
        # Debian's AAVMF) refuses it and stops at "No bootable option". Declare secure_boot to choose.
        FIELD["secure_boot"].write(root, False)
    etree.SubElement(root, "clock", offset="utc")
    devices = etree.SubElement(root, "devices")
    if spec.get("serials") is None:
        etree.SubElement(devices, "serial", type="pty")
    if spec.get("consoles") is None:
        etree.SubElement(devices, "console", type="pty")
    for toggle in ("guest_agent", "rng"):  # virt-install's defaults, unless declared off
        if spec.get(toggle) is None:
            FIELD[toggle].write(root, True)
    return root


def set_uuid(root, guest_uuid):
    """Write ``guest_uuid`` into a new guest's document, right after its name (where libvirt keeps it); None
    leaves the document as it is."""
    if guest_uuid is None:
        return
    node = root.find("uuid")
    if node is None:
        node = etree.Element("uuid")
        root.find("name").addnext(node)
    node.text = guest_uuid


def renamed_document(xml, name):
    """A guest's document under a new name (what virDomainRename makes of it): the plan of a guest renamed in its
    description is made against this, in check mode as in a real run."""
    root = parse_xml(xml)
    ensure_path(root, "name").text = name
    return to_string(root)


# ---- xml_edits: the escape hatch -------------------------------------------------------------------

def _same_tree(a, b):
    return etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")


def apply_xml_edits(root, edits):
    """Apply the escape-hatch edits; each is idempotent (it writes only what is not there yet)."""
    changes = []
    secret = secret_attributes()
    for edit in edits:
        xpath, action = edit["xpath"], edit["action"]
        path, attr = xpath, None
        parent, _sep, last = xpath.rpartition("/")
        if action == "value" and last.startswith("@"):
            path, attr = parent, last[1:]  # '.../@name': set that attribute
        nodes = [n for n in root.xpath(path) if isinstance(n, etree._Element)]
        if action == "absent":
            for node in nodes:
                node.getparent().remove(node)
                changes.append(Change("xml_edits: remove %s" % xpath, "present", None))
            continue
        if not nodes:
            raise SpecError(edit["option"] + ".xpath", xpath, "it matches no element in the guest's XML")
        for node in nodes:
            if action == "value":
                value = str(edit["value"])
                current = node.get(attr) if attr else (node.text or "")
                if current != value:
                    if attr:
                        node.set(attr, value)
                    else:
                        node.text = value
                    changes.append(Change("xml_edits: %s" % xpath, current, value, secret=attr in secret))
            elif action == "attributes":
                for name, value in edit["value"].items():
                    if value is None:
                        if name in node.attrib:
                            changes.append(Change("xml_edits: %s/@%s" % (xpath, name), node.get(name), None,
                                                  secret=name in secret))
                            node.attrib.pop(name)
                    elif node.get(name) != str(value):
                        changes.append(Change("xml_edits: %s/@%s" % (xpath, name), node.get(name), str(value),
                                              secret=name in secret))
                        node.set(name, str(value))
            else:
                fragment = parse_xml(edit["fragment"])  # the spec keeps it as text: plain data, never changed
                if not any(_same_tree(child, fragment) for child in node):
                    node.append(copy.deepcopy(fragment))
                    changes.append(Change("xml_edits: %s" % xpath, None, fragment.tag))
    return changes
