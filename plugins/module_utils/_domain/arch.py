# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a guest's architecture allows, from the hypervisor's own words. Pure functions over XML.

``parse_guest_arches`` reads the capabilities' ``<guest>`` entries (every architecture the hypervisor runs, its
emulator, machines with their aliases, and domain types: kvm or only emulation). ``parse_domain_caps`` reads the
domain capabilities of one (arch, machine, virt type) (``virConnectGetDomainCapabilities``): the disk buses, video
models, firmware and CPU modes that guest can have. A new guest's features and CPU (``default_features``,
``default_cpu``) and the check of a spec against what the architecture accepts (``check_spec``) read them, never
libvirt.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

X86 = ("x86_64", "i686")
# Architectures whose firmware gives ACPI tables only when it is UEFI (QEMU's virt machine: libvirt refuses
# "ACPI requires UEFI on this architecture"); without UEFI the guest kernel reads the device tree.
ACPI_WITH_UEFI = ("aarch64", "armv7l", "armv6l", "riscv64", "riscv32", "loongarch64")
# Architectures whose QEMU default CPU under emulation is not one a distribution's kernel runs on (aarch64's
# 'virt' defaults to a 32-bit cortex-a15), with the 64-bit model used instead (virt-install's choice too). It is
# preferred to the 'maximum' mode: QEMU 7.2 emulates the max CPU's pointer authentication in software, and a Debian
# kernel took 44 s to reach its init with it against 13 s with cortex-a57 here.
EMULATED_CPU = {"aarch64": "cortex-a57"}


# Architectures whose useful machine is QEMU's generic ``virt`` board, virt-install's choice for them: without one
# declared, libvirt 9.0 defines an aarch64 guest on 'integratorcp' (a 32-bit ARM926 board) and a riscv64 one on
# 'spike', neither of which boots a distribution's kernel.
VIRT_MACHINE = ("aarch64", "armv7l", "armv6l", "riscv64", "riscv32", "loongarch64")


def default_machine(arch):
    """The machine a new guest of ``arch`` gets when it declares none (``virt`` for VIRT_MACHINE), or None:
    libvirt's default (x86's pc, ppc64's pseries, s390x's s390-ccw-virtio) is right."""
    return "virt" if arch in VIRT_MACHINE else None


def parse_guest_arches(caps_xml):
    """{arch: {"wordsize", "emulator", "machines", "machine_aliases", "domain_types", "acceleration"}} from the
    capabilities XML: every architecture the hypervisor runs; "acceleration" is "kvm" when KVM is offered for it,
    "emulation" when only QEMU's TCG is."""
    root = parse_xml(caps_xml) if isinstance(caps_xml, (str, bytes)) else caps_xml
    arches = {}
    for arch in root.iterfind("guest/arch"):
        name = arch.get("name")
        if not name:
            continue
        entry = arches.setdefault(name, {"wordsize": None, "emulator": None, "machines": [], "machine_aliases": {},
                                         "domain_types": [], "acceleration": "emulation"})
        wordsize = arch.findtext("wordsize")
        entry["wordsize"] = int(wordsize) if wordsize and wordsize.isdigit() else entry["wordsize"]
        entry["emulator"] = entry["emulator"] or arch.findtext("emulator")
        machines = set(entry["machines"])
        for machine in arch.iterfind(".//machine"):  # the arch's own and each domain type's
            if machine.text:
                machines.add(machine.text)
                if machine.get("canonical"):
                    entry["machine_aliases"][machine.text] = machine.get("canonical")
                    machines.add(machine.get("canonical"))
        entry["machines"] = sorted(machines)
        entry["domain_types"] = sorted(set(entry["domain_types"]) | {d.get("type") for d in arch.iterfind("domain")})
        entry["acceleration"] = "kvm" if "kvm" in entry["domain_types"] else "emulation"
    return arches


def _enum(node, name):
    if node is None:
        return None
    enum = node.find("enum[@name='%s']" % name)
    return None if enum is None else [v.text for v in enum.iterfind("value")]


def parse_domain_caps(xml):
    """The parts of a domain capabilities document a guest's plan reads: {"arch", "machine", "virt_type",
    "disk_buses", "video_models", "firmware", "cpu_modes", "cpu_models", "features", "graphics_types",
    "filesystem_drivers", "tpm_models", "redirdev"} (None where it says nothing)."""
    root = parse_xml(xml)
    cpu_models = [m.text for m in root.iterfind("cpu/mode[@name='custom']/model")]
    tpm = root.find("devices/tpm")
    redirdev = root.find("devices/redirdev")
    return {
        "arch": root.findtext("arch"),
        "machine": root.findtext("machine"),
        "virt_type": root.findtext("domain"),
        "disk_buses": _enum(root.find("devices/disk[@supported='yes']"), "bus"),
        "video_models": _enum(root.find("devices/video[@supported='yes']"), "modelType"),
        "firmware": _enum(root.find("os"), "firmware") or [],
        "cpu_modes": sorted(m.get("name") for m in root.iterfind("cpu/mode") if m.get("supported") == "yes"),
        "cpu_models": cpu_models,
        "features": sorted(f.tag for f in root.iterfind("features/*") if f.get("supported") == "yes"),
        "graphics_types": _enum(root.find("devices/graphics[@supported='yes']"), "type"),
        "filesystem_drivers": _enum(root.find("devices/filesystem[@supported='yes']"), "driverType"),
        # None where the document does not say (an older libvirt); [] where the device is not supported
        "tpm_models": None if tpm is None else (_enum(tpm, "model") or []) if tpm.get("supported") == "yes" else [],
        "redirdev": None if redirdev is None else redirdev.get("supported") == "yes",
    }


def default_features(arch, firmware):
    """The <features> children a new guest of ``arch`` starts with: x86 has ACPI and the APIC; the architectures
    whose ACPI tables come from UEFI have ACPI with ``firmware: efi`` only; the others (ppc64, s390x, ...) none."""
    if arch in X86:
        return ["acpi", "apic"]
    if arch in ACPI_WITH_UEFI and firmware == "efi":
        return ["acpi"]
    return []


def default_cpu(arch, virt_type, caps):
    """The <cpu> attributes and model a new emulated guest of ``arch`` needs, or None (QEMU's default is fine):
    an aarch64 guest under TCG gets the 64-bit cortex-a57 where its domain capabilities list that model (or say
    nothing), else the 'maximum' mode where they support it."""
    if virt_type == "kvm" or arch not in EMULATED_CPU:
        return None
    if caps is None or EMULATED_CPU[arch] in caps["cpu_models"]:
        return {"mode": "custom", "model": EMULATED_CPU[arch]}
    if "maximum" in caps["cpu_modes"]:
        return {"mode": "maximum"}
    return None


def cdrom_bus(arch, caps):
    """The bus of a cdrom (the cloud-init seed's, a declared cdrom's without one) on a guest of ``arch``: SATA on x86
    (virt-install's), else SCSI (a virtio-scsi controller: aarch64 ``virt``, ppc64 ``pseries`` and s390x have no IDE
    and s390x no SATA), else the first bus the domain capabilities offer that can hold a cdrom."""
    if arch in X86:
        return "sata"
    buses = caps["disk_buses"] if caps is not None and caps["disk_buses"] is not None else ["scsi"]
    for bus in ("scsi", "sata", "usb", "ide"):
        if bus in buses:
            return bus
    return "scsi"


def tpm_model(arch, caps):
    """The TPM model of a new TPM: the CRB interface on x86 (what the collection always wrote), else the first model
    the domain capabilities list for the architecture (aarch64 tpm-tis, ppc64 tpm-spapr), else None (libvirt's
    default for the arch)."""
    if arch in X86:
        return "tpm-crb"
    return caps["tpm_models"][0] if caps is not None and caps.get("tpm_models") else None


def _usb_devices(spec):
    """(option, value) of each declared device that sits on USB."""
    for index, item in enumerate(spec.get("inputs") or []):
        if item.get("bus") == "usb":
            yield "inputs[%d].bus" % index, "usb"
    for index, item in enumerate(spec.get("sounds") or []):
        if item.get("model") == "usb":
            yield "sounds[%d].model" % index, "usb"
    for option in ("redirdevs", "smartcards"):
        if spec.get(option):
            yield option, "%d device(s)" % len(spec[option])


def _accepted(values):
    return ", ".join(values) if values else "none"


def check_runs(arch, virt_type, arches, option_arch="arch"):
    """Raise SpecError when the hypervisor (``arches``: parse_guest_arches of its capabilities; empty: not known)
    runs no guests of ``arch`` (no QEMU emulator for it), or offers no ``virt_type`` (kvm) for it, naming the option
    and what it does run. Only for QEMU's driver."""
    qemu = {"qemu", "kvm"}
    if not arch or not any(qemu & set(entry["domain_types"]) for entry in (arches or {}).values()):
        return  # not known, or not QEMU's driver (libvirt's test driver, Xen, LXC judge for themselves)
    if arch not in arches:
        raise SpecError(option_arch, arch, "this hypervisor runs guests of %s (no QEMU emulator for %s here: the "
                        "hypervisor role installs one with hypervisor_architectures: [%s])"
                        % (_accepted(sorted(arches)), arch, arch))
    types = arches[arch]["domain_types"]
    if virt_type in qemu and types and virt_type not in types:
        raise SpecError("virt_type", virt_type, "this hypervisor offers %s guests of %s (%s)" % (
            _accepted(types), arch, "emulated: virt_type qemu" if types == ["qemu"] else "its domain types"))


def check_spec(spec, caps, seed_bus=None, current=None):
    """Raise SpecError, naming the option and what the guest's architecture and machine accept, for a disk bus,
    video model, firmware, graphics type, filesystem driver, TPM, USB device or CPU mode its domain capabilities
    (``caps``) do not offer. ``caps`` None: nothing is known, libvirt judges at define. ``current`` (the guest's
    parsed XML, None for a new guest): a graphics type or CPU mode the guest already has is its own (libvirt defined
    it; an emulated guest adopted with host-passthrough keeps it), only a new one is checked."""
    if caps is None:
        return
    _check_devices(spec, caps, "a guest of %s %s (%s)" % (caps["arch"], caps["machine"], caps["virt_type"]), current)
    where = "a guest of %s %s (%s)" % (caps["arch"], caps["machine"], caps["virt_type"])
    buses = caps["disk_buses"]
    if buses is not None:
        for index, disk in enumerate(spec.get("disks") or []):
            if disk.get("bus") and disk["bus"] not in buses:
                raise SpecError("disks[%d].bus" % index, disk["bus"],
                                "%s accepts the disk buses %s" % (where, _accepted(buses)))
        if seed_bus and seed_bus not in buses:
            raise SpecError("cloud_init", "bus %s" % seed_bus,
                            "the seed cdrom's bus is not one %s accepts (%s)" % (where, _accepted(buses)))
    models = caps["video_models"]
    if spec.get("video") and models is not None and spec["video"] not in models:
        raise SpecError("video", spec["video"], "%s accepts the video models %s" % (where, _accepted(models)))
    if spec.get("firmware") == "efi" and "efi" not in caps["firmware"]:
        raise SpecError("firmware", "efi", "%s has no UEFI firmware to select here (firmware: bios, or a "
                        "loader through xml_edits)" % where)


def _check_devices(spec, caps, where, current):
    types = caps.get("graphics_types")
    have = set() if current is None else {g.get("type") for g in current.iterfind("devices/graphics")}
    for index, graphics in enumerate(spec.get("graphics") or []):
        kind = graphics.get("_key") or graphics.get("type")
        if types is not None and kind not in types and kind not in have:
            raise SpecError("graphics[%d].type" % index, kind, "%s accepts the graphics types %s" % (where, _accepted(types)))
    drivers = caps.get("filesystem_drivers")
    for index, share in enumerate(spec.get("filesystems") or []):
        if drivers is not None and share.get("driver") and share["driver"] not in drivers:
            raise SpecError("filesystems[%d].driver" % index, share["driver"],
                            "%s accepts the filesystem drivers %s" % (where, _accepted(drivers)))
    if spec.get("tpm") and caps.get("tpm_models") == []:
        raise SpecError("tpm", True, "%s can have no TPM" % where)
    if caps.get("redirdev") is False or (caps["disk_buses"] is not None and "usb" not in caps["disk_buses"]):
        for option, value in _usb_devices(spec):
            raise SpecError(option, value, "%s has no USB (its inputs go on virtio)" % where)
    mode = spec.get("cpu.mode")
    current_mode = None if current is None or current.find("cpu") is None else current.find("cpu").get("mode")
    if mode and mode != current_mode and caps["cpu_modes"] and mode not in caps["cpu_modes"]:
        raise SpecError("cpu.mode", mode, "%s accepts the CPU modes %s" % (where, _accepted(caps["cpu_modes"])))
