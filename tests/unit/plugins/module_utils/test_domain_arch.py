"""Guests of other architectures, over the capabilities and domain capabilities this machine's libvirt 9.0 and
QEMU 7.2 gave (fixtures capabilities-arches.xml, domcaps-<arch>-qemu.xml: ``virsh domcapabilities --arch aarch64
--machine virt --virttype qemu`` etc.). No daemon."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import arch as archmod
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import normalize
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import plan as planner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext, read_domain_caps_for
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/domain.rng")
MACHINES = {"aarch64": "virt", "ppc64le": "pseries", "s390x": "s390-ccw-virtio", "x86_64": "pc"}


def host(fixture_text, with_caps=True):
    arches = archmod.parse_guest_arches(fixture_text("capabilities-arches.xml"))
    context = HostContext(arches["x86_64"]["machine_aliases"], host_arch="x86_64", arches=arches)
    if with_caps:
        for arch in MACHINES:
            caps = archmod.parse_domain_caps(fixture_text("domcaps-%s-qemu.xml" % arch))
            context.remember_caps((arch, caps["machine"], "qemu"), caps)
    return context


def spec_of(context, **params):
    params = dict({"name": "arch-guest", "virt_type": "qemu", "memory": "256MiB", "vcpus": 1}, **params)
    for disk in params.get("disks") or []:
        disk.setdefault("device", "disk")
    for nic in params.get("interfaces") or []:
        nic.setdefault("model", "virtio")
        nic.setdefault("direct_mode", "bridge")
    return normalize.normalize_guest(params, context)


def plan(context, current=None, **params):
    return planner.plan_domain(current, spec_of(context, **params), context)


def root_of(result):
    doc = etree.fromstring(result.after.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log.last_error
    return doc


def test_capabilities_give_every_arch_its_machines_aliases_and_acceleration(fixture_text):
    arches = archmod.parse_guest_arches(fixture_text("capabilities-arches.xml"))
    assert sorted(arches) == ["aarch64", "ppc64le", "s390x", "x86_64"]
    assert arches["aarch64"]["machine_aliases"]["virt"] == "virt-7.2"
    assert arches["ppc64le"]["machine_aliases"]["pseries"] == "pseries-7.2"
    assert arches["s390x"]["machine_aliases"]["s390-ccw-virtio"] == "s390-ccw-virtio-7.2"
    assert arches["aarch64"]["emulator"] == "/usr/bin/qemu-system-aarch64"
    assert arches["s390x"]["wordsize"] == 64
    assert "virt-7.2" in arches["aarch64"]["machines"] and "virt" in arches["aarch64"]["machines"]
    # this x86_64 machine runs its own arch with KVM, the others emulated (TCG)
    assert {name: a["acceleration"] for name, a in arches.items()} == {
        "x86_64": "kvm", "aarch64": "emulation", "ppc64le": "emulation", "s390x": "emulation"}
    assert arches["x86_64"]["domain_types"] == ["kvm", "qemu"] and arches["s390x"]["domain_types"] == ["qemu"]


def test_kvm_in_a_guest_entry_reads_as_kvm_acceleration():
    caps = ("<capabilities><host><cpu><arch>aarch64</arch></cpu></host><guest><os_type>hvm</os_type>"
            "<arch name='aarch64'><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-aarch64</emulator>"
            "<machine canonical='virt-7.2'>virt</machine><domain type='qemu'/>"
            "<domain type='kvm'><machine canonical='virt-8.0'>virt</machine></domain></arch></guest></capabilities>")
    arches = archmod.parse_guest_arches(caps)
    assert arches["aarch64"]["acceleration"] == "kvm"
    assert arches["aarch64"]["domain_types"] == ["kvm", "qemu"]


@pytest.mark.parametrize("arch", ["aarch64", "ppc64le", "s390x"])
def test_machine_aliases_are_those_of_the_guests_arch(fixture_text, arch):
    context = host(fixture_text)
    canonical = {"aarch64": "virt-7.2", "ppc64le": "pseries-7.2", "s390x": "s390-ccw-virtio-7.2"}[arch]
    assert spec_of(context, arch=arch, machine=MACHINES[arch])["machine"] == canonical
    # and an x86 alias is not applied to another arch's machine of the same name
    assert spec_of(context, machine="pc")["machine"] == "pc-i440fx-7.2"
    assert spec_of(context, arch="aarch64", machine="pc")["machine"] == "pc"


@pytest.mark.parametrize("arch", ["aarch64", "ppc64le", "s390x"])
def test_a_foreign_guest_is_idempotent_after_libvirt_canonicalises_its_machine(fixture_text, arch):
    """The guest libvirt stores has the canonical machine: the next run (and check mode) plans nothing."""
    context = host(fixture_text)
    params = dict(arch=arch, machine=MACHINES[arch], **{"boot.kernel": "/var/lib/libvirt/boot/vmlinuz"})
    first = plan(context, **params)
    stored = first.after  # what define would keep: the spec already holds the canonical machine
    assert 'machine="%s"' % context.canonical_machine(arch, MACHINES[arch]) in stored
    second = plan(context, stored, **params)
    assert not second.changed, second.changes


def test_aarch64_gets_no_acpi_without_uefi_and_a_64_bit_cpu(fixture_text):
    doc = root_of(plan(host(fixture_text), arch="aarch64", machine="virt"))
    assert doc.find("features") is None  # libvirt refuses ACPI without UEFI on aarch64
    cpu = doc.find("cpu")  # a 64-bit model the domain capabilities list (QEMU's default is a 32-bit cortex-a15)
    assert cpu.get("mode") == "custom" and cpu.findtext("model") == "cortex-a57"
    assert doc.find("os/type").get("arch") == "aarch64"


@pytest.mark.parametrize("arch, machine", [("aarch64", "virt-7.2"), ("ppc64le", None), ("x86_64", None)])
def test_a_new_guest_without_a_machine_gets_virt_on_aarch64(fixture_text, arch, machine):
    """libvirt 9.0 defines an aarch64 guest without a machine on 'integratorcp', a 32-bit ARM926 board: a new guest
    gets 'virt' (virt-install's choice), is checked against virt's domain capabilities (UEFI is there), and the next
    run, which declares no machine either, changes nothing. Elsewhere libvirt's default stands."""
    context = host(fixture_text)
    result = plan(context, arch=arch, firmware="efi" if arch == "aarch64" else "bios")
    doc = root_of(result)
    assert doc.find("os/type").get("machine") == machine
    assert not plan(context, result.after, arch=arch).changed
    # an existing guest keeps the machine it has
    stored = result.after.replace('machine="virt-7.2"', 'machine="integratorcp"')
    assert not plan(context, stored, arch=arch).changed


def test_aarch64_with_uefi_has_acpi(fixture_text):
    doc = root_of(plan(host(fixture_text), arch="aarch64", machine="virt", firmware="efi"))
    assert [f.tag for f in doc.find("features")] == ["acpi"]


def test_aarch64_without_cortex_a57_gets_the_maximum_mode(fixture_text):
    context = host(fixture_text)
    caps = dict(context.caps_for(("aarch64", "virt-7.2", "qemu")), cpu_models=["cortex-a15"])
    context.remember_caps(("aarch64", "virt-7.2", "qemu"), caps)
    assert root_of(plan(context, arch="aarch64", machine="virt")).find("cpu").get("mode") == "maximum"
    context.remember_caps(("aarch64", "virt-7.2", "qemu"), dict(caps, cpu_modes=["custom"]))
    assert root_of(plan(context, arch="aarch64", machine="virt")).find("cpu") is None  # nothing better known


def test_a_declared_cpu_is_not_overridden(fixture_text):
    declared = {"mode": "custom", "model": "cortex-a72"}
    cpu = root_of(plan(host(fixture_text), arch="aarch64", machine="virt", cpu=declared)).find("cpu")
    assert cpu.get("mode") == "custom" and cpu.findtext("model") == "cortex-a72"


@pytest.mark.parametrize("arch", ["ppc64le", "s390x"])
def test_ppc64_and_s390x_have_no_x86_features_and_qemus_cpu(fixture_text, arch):
    doc = root_of(plan(host(fixture_text), arch=arch, machine=MACHINES[arch]))
    assert doc.find("features") is None
    assert doc.find("cpu") is None


def test_x86_keeps_acpi_and_apic_with_or_without_domain_capabilities(fixture_text):
    with_caps = plan(host(fixture_text), machine="pc")
    without = plan(HostContext({"pc": "pc-i440fx-7.2"}), machine="pc")
    assert with_caps.after == without.after
    doc = root_of(with_caps)
    assert [f.tag for f in doc.find("features")] == ["acpi", "apic"]
    assert doc.find("cpu") is None


@pytest.mark.parametrize("arch, params, option, accepted", [
    ("aarch64", {"disks": [{"path": "/x.img", "bus": "ide"}]}, "disks[0].bus", "fdc, scsi, virtio, usb, sata"),
    ("s390x", {"disks": [{"path": "/x.img"}, {"path": "/y.img", "bus": "sata"}]}, "disks[1].bus", "fdc, scsi, virtio"),
    ("ppc64le", {"firmware": "efi"}, "firmware", "no UEFI firmware"),
    ("s390x", {"video": "qxl"}, "video", "video models"),
])
def test_a_device_the_architecture_cannot_have_is_an_error_naming_the_option(fixture_text, arch, params, option, accepted):
    with pytest.raises(SpecError) as err:
        plan(host(fixture_text), arch=arch, machine=MACHINES[arch], **params)
    assert err.value.option == option
    assert accepted in str(err.value) and arch in str(err.value)


@pytest.mark.parametrize("arch, bus", [("s390x", "scsi"), ("aarch64", "scsi"), ("ppc64le", "scsi"), ("x86_64", "sata")])
def test_the_seed_cdrom_and_a_cdrom_without_a_bus_go_on_the_archs_bus(fixture_text, arch, bus):
    """s390x has no SATA or IDE: the cloud-init seed (and a cdrom declared without a bus) goes on SCSI (libvirt adds the
    virtio-scsi controller); x86 keeps SATA, virt-install's."""
    seed = {"pool": "default", "user_data": {"users": []}}
    result = plan(host(fixture_text), arch=arch, machine=MACHINES[arch], cloud_init=seed,
                  disks=[{"path": "/x.img"}, {"path": "/cd.iso", "device": "cdrom"}])
    doc = root_of(result)
    cdroms = doc.findall("devices/disk[@device='cdrom']")
    assert [c.find("target").get("bus") for c in cdroms] == [bus, bus]
    assert [c.find("target").get("dev") for c in cdroms] == ["sda", "sdb"]
    # a cdrom whose bus is declared keeps it, and is checked
    with pytest.raises(SpecError) as err:
        plan(host(fixture_text), arch="s390x", machine="s390-ccw-virtio",
             disks=[{"path": "/cd.iso", "device": "cdrom", "bus": "sata"}])
    assert err.value.option == "disks[0].bus"


@pytest.mark.parametrize("arch, params, option, accepted", [
    ("x86_64", {"graphics": [{"type": "rdp"}]}, "graphics[0].type", "sdl, vnc, spice, egl-headless, dbus"),
    ("s390x", {"tpm": True}, "tpm", "can have no TPM"),
    ("s390x", {"inputs": [{"type": "tablet", "bus": "virtio"}, {"type": "tablet"}]}, "inputs[1].bus", "has no USB"),
    ("s390x", {"redirdevs": 1}, "redirdevs", "has no USB"),
    ("x86_64", {"cpu": {"mode": "host-passthrough"}}, "cpu.mode", "custom, host-model, maximum"),
])
def test_what_the_domain_capabilities_do_not_offer_is_refused(fixture_text, arch, params, option, accepted):
    with pytest.raises(SpecError) as err:
        plan(host(fixture_text), arch=arch, machine=MACHINES[arch], **params)
    assert err.value.option == option
    assert accepted in str(err.value) and arch in str(err.value)


def test_a_graphics_type_or_cpu_mode_the_guest_already_has_is_its_own(fixture_text):
    """Only a new value is checked: an emulated guest defined elsewhere with host-passthrough (libvirt 9.0 defines it,
    QEMU cannot start it), or with a display its domain capabilities do not list (another driver's, an XML made
    elsewhere), is adopted and converged, not refused."""
    context = host(fixture_text)
    stored = plan(context, machine="pc").after
    root = etree.fromstring(stored.encode())
    root.find("cpu").set("mode", "host-passthrough") if root.find("cpu") is not None else \
        etree.SubElement(root, "cpu", mode="host-passthrough")
    etree.SubElement(root.find("devices"), "graphics", type="rdp", autoport="yes")
    current = etree.tostring(root).decode()
    result = plan(context, current, cpu={"mode": "host-passthrough"}, graphics=[{"type": "rdp"}])
    assert [c.what for c in result.changes] == []


def test_usb_devices_bring_a_usb_controller_where_libvirt_adds_none(fixture_text):
    """libvirt gives an aarch64 virt guest no USB controller and refuses USB devices without one (found booting the
    aarch64 VNC desktop): a qemu-xhci comes with the first USB device, once; x86 is left to libvirt's default."""
    context = host(fixture_text)
    desktop = dict(graphics=[{"type": "vnc"}], inputs=[{"type": "tablet", "bus": "usb"}, {"type": "keyboard", "bus": "usb"}])
    result = plan(context, arch="aarch64", **desktop)
    doc = root_of(result)
    assert [(c.get("type"), c.get("model")) for c in doc.iterfind("devices/controller")] == [("usb", "qemu-xhci")]
    assert any(c.what == "controller usb" and "inputs (bus usb)" in c.after for c in result.changes)
    assert not plan(context, result.after, arch="aarch64", **desktop).changed
    virtio_only = root_of(plan(context, arch="aarch64", inputs=[{"type": "tablet", "bus": "virtio"}]))
    assert virtio_only.find("devices/controller") is None
    assert root_of(plan(context, machine="pc", **desktop)).find("devices/controller") is None


@pytest.mark.parametrize("arch, model", [("aarch64", "tpm-tis"), ("ppc64le", "tpm-spapr"), ("x86_64", "tpm-crb")])
def test_a_tpm_gets_the_model_of_its_arch(fixture_text, arch, model):
    doc = root_of(plan(host(fixture_text), arch=arch, machine=MACHINES[arch], tpm=True))
    assert doc.find("devices/tpm").get("model") == model


def test_uefi_with_a_direct_kernel_boot_has_secure_boot_off_unless_declared(fixture_text):
    """libvirt picks AAVMF with Microsoft's keys enrolled for firmware='efi' on aarch64: it refuses a kernel the
    firmware loads from QEMU (no signed shim). A new guest with a direct kernel boot asks for the firmware without
    secure boot; a declared secure_boot wins, and a disk-booted guest is left to libvirt's choice."""
    boot = {"kernel": "/k", "initrd": "/i", "cmdline": "console=ttyAMA0"}
    doc = root_of(plan(host(fixture_text), arch="aarch64", machine="virt", firmware="efi", boot=boot))
    assert doc.find("os").get("firmware") == "efi"
    assert {f.get("name"): f.get("enabled") for f in doc.iterfind("os/firmware/feature")} == \
        {"secure-boot": "no", "enrolled-keys": "no"}
    assert [f.tag for f in doc.find("features")] == ["acpi"]
    disk_booted = root_of(plan(host(fixture_text), arch="aarch64", machine="virt", firmware="efi"))
    assert disk_booted.find("os/firmware") is None
    # the second run declares the same: nothing to change
    context = host(fixture_text)
    stored = plan(context, arch="aarch64", machine="virt", firmware="efi", boot=boot).after
    assert plan(context, stored, arch="aarch64", machine="virt", firmware="efi", boot=boot).changes == []


def test_an_architecture_or_kind_the_hypervisor_does_not_run_is_refused_naming_it(fixture_text):
    """No emulator for mips64el here, no KVM for aarch64 on this x86 host: the option is named with what the
    hypervisor runs, before anything is written (libvirt's own words were 'No emulator found for arch')."""
    context = host(fixture_text)
    with pytest.raises(SpecError) as err:
        plan(context, arch="mips64el", machine="malta")
    assert err.value.option == "arch" and "aarch64, ppc64le, s390x, x86_64" in str(err.value)
    assert "hypervisor_architectures: [mips64el]" in str(err.value)
    with pytest.raises(SpecError) as err:
        plan(context, arch="aarch64", machine="virt", virt_type="kvm")
    assert err.value.option == "virt_type" and "offers qemu guests of aarch64 (emulated: virt_type qemu)" in str(err.value)
    # x86 here runs both; an existing guest that declares nothing new is not judged again
    plan(context, machine="pc", virt_type="kvm")
    stored = plan(context, arch="aarch64", machine="virt").after
    context.arches.pop("aarch64")
    assert not plan(context, stored).changed


def test_an_existing_guests_arch_comes_from_its_xml(fixture_text):
    """A guest whose description leaves arch out is checked against its own arch's capabilities."""
    context = host(fixture_text)
    stored = plan(context, arch="aarch64", machine="virt").after
    with pytest.raises(SpecError, match="disks\\[0\\].bus"):
        plan(context, stored, disks=[{"path": "/x.img", "bus": "ide"}])


def test_without_domain_capabilities_the_rules_of_the_arch_stand(fixture_text):
    doc = root_of(plan(host(fixture_text, with_caps=False), arch="aarch64", machine="virt",
                       disks=[{"path": "/x.img", "bus": "ide"}]))  # nothing known: libvirt judges at define
    assert doc.find("features") is None
    assert doc.find("cpu").findtext("model") == "cortex-a57"


class CapsConn:
    """getDomainCapabilities as libvirt answers it: this machine's XML, or an error for an arch it cannot run."""

    def __init__(self, fixture_text):
        self.fixture_text, self.calls = fixture_text, []

    def getDomainCapabilities(self, emulator, arch, machine, virt_type, flags):  # noqa: N802 (libvirt's name)
        self.calls.append((emulator, arch, machine, virt_type, flags))
        if virt_type != "qemu" or arch not in MACHINES:
            raise libvirt.libvirtError("unsupported configuration: KVM is not supported on this host")
        return self.fixture_text("domcaps-%s-qemu.xml" % arch)


def test_domain_capabilities_are_read_once_per_arch_machine_and_type(fixture_text):
    context = host(fixture_text, with_caps=False)
    conn = CapsConn(fixture_text)
    for name in ("a", "b", "c"):
        read_domain_caps_for(conn, context, None, spec_of(context, name=name, arch="aarch64", machine="virt"))
    read_domain_caps_for(conn, context, None, spec_of(context, arch="s390x", machine="s390-ccw-virtio"))
    read_domain_caps_for(conn, context, None, spec_of(context, arch="aarch64", virt_type="kvm"))
    assert conn.calls == [(None, "aarch64", "virt-7.2", "qemu", 0), (None, "s390x", "s390-ccw-virtio-7.2", "qemu", 0),
                          (None, "aarch64", "virt-7.2", "kvm", 0)]  # a new aarch64 guest's machine is virt
    assert context.caps_for(("aarch64", "virt-7.2", "qemu"))["disk_buses"] == ["fdc", "scsi", "virtio", "usb", "sata"]
    assert context.caps_for(("aarch64", "virt-7.2", "kvm")) is None  # unknown: libvirt judges at define
    # the plan finds them: an IDE disk on aarch64 is refused
    with pytest.raises(SpecError, match="disks\\[0\\].bus"):
        plan(context, arch="aarch64", machine="virt", disks=[{"path": "/x.img", "bus": "ide"}])


# ---- the property: whatever is declared, a guest of any architecture is either refused naming an option or made
# only of what its domain capabilities offer, valid, and converged ----------------------------------------------

_arch_spec = st.fixed_dictionaries({"arch": st.sampled_from(sorted(MACHINES))}, optional={
    "firmware": st.sampled_from(["bios", "efi"]),
    "boot": st.just({"kernel": "/boot/k", "initrd": "/boot/i", "cmdline": "quiet"}),
    "disks": st.lists(st.fixed_dictionaries({"path": st.sampled_from(["/a.img", "/b.img", "/c.iso"])}, optional={
        "device": st.sampled_from(["disk", "cdrom"]),
        "bus": st.sampled_from(["virtio", "sata", "scsi", "ide", "usb"])}), max_size=3, unique_by=lambda d: d["path"]),
    "cloud_init": st.just({"pool": "default", "meta_data": {"local-hostname": "g"}}),
    "tpm": st.booleans(),
    "video": st.sampled_from(["virtio", "qxl", "vga", "ramfb", "none"]),
    "graphics": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["vnc", "spice", "rdp", "dbus", "sdl"])}),
                         max_size=2, unique_by=lambda g: g["type"]),
    "inputs": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["tablet", "keyboard"]),
                                              "bus": st.sampled_from(["usb", "virtio"])}), max_size=2),
    "redirdevs": st.integers(0, 2),
    # mostly what emulation runs (host-passthrough never under TCG, host-model only on x86): more guests get made
    "cpu": st.fixed_dictionaries({"mode": st.sampled_from(["maximum"] * 4 + ["host-model", "host-passthrough"])}),
    "filesystems": st.lists(st.fixed_dictionaries({"source": st.just("/srv/a"), "target": st.just("data"),
                                                   "driver": st.sampled_from(["virtiofs", "path"])}), max_size=1),
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=_arch_spec)
def test_property_a_guest_is_refused_or_what_its_arch_offers(fixture_text, params):
    context = host(fixture_text)
    arch = params["arch"]
    params = dict(params, machine=MACHINES[arch])
    try:
        result = plan(context, **params)
    except SpecError as err:
        # the error names a declared option (or a part of one) and the arch it was judged for
        assert err.option.split("[")[0].split(".")[0] in params, err
        assert arch in str(err) or err.option in ("cloud_init",), err
        event("refused: %s" % err.option.split("[")[0])
        return
    event("made: %s" % arch)
    doc = root_of(result)
    caps = context.caps_for((arch, context.canonical_machine(arch, MACHINES[arch]), "qemu"))
    for disk in doc.iterfind("devices/disk"):
        assert disk.find("target").get("bus") in caps["disk_buses"]
    for graphics in doc.iterfind("devices/graphics"):
        assert graphics.get("type") in caps["graphics_types"]
    if doc.find("devices/tpm") is not None:
        assert doc.find("devices/tpm").get("model") in caps["tpm_models"]
    if arch != "x86_64":
        assert doc.find("features/apic") is None
        assert not any(d.find("target").get("bus") in ("sata", "ide") and d.get("device") == "cdrom"
                       and "bus" not in str(params.get("disks")) for d in doc.iterfind("devices/disk"))
    if arch == "s390x":
        assert doc.find("devices/redirdev") is None and doc.find("devices/input[@bus='usb']") is None
    if arch != "x86_64" and doc.xpath("devices/input[@bus='usb'] | devices/redirdev | devices/disk[target/@bus='usb']"):
        assert doc.find("devices/controller[@type='usb']") is not None  # libvirt adds none off x86
    # the next run declares the same and changes nothing
    assert not plan(context, result.after, **params).changed
