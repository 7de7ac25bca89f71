# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the guest's options table. One row per field: spec key, XML place, codec (type and
choices), secret or not, and how a running guest takes a change of it (its live kind: the words
``applied_live`` shows and the libvirt call). The argument spec is derived from these rows
(``spec.py``); device lists have their tables in ``devices.py`` (disks in ``disks.py``).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Choice, Int, KiB, Text, YesNo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    ElementList,
    Field,
    LiveKind,
    Toggle,
    ensure_path,
    find_path,
)

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree

METADATA_NS = GUEST.namespace  # our <metadata> element in a guest (_metadata.GUEST)
SECRET_MASK = "********"  # a secret's place in a --diff: never its value, old or new
MAX_VCPUS = 4096
# Ignition configs are files QEMU reads through fw_cfg; qemu must be able to read them.
IGNITION_DIR = "/var/lib/libvirt/kvmfleet/ignition"


# ---- live kinds: how a running guest takes a change of a field --------------------------------------------
# ``call(guest, change)``: ``guest`` is the running guest being converged (live.LiveGuest: its dom,
# and the device operations); ``change`` the Change (or the DeviceOp) to apply.

def _live():
    return libvirt.VIR_DOMAIN_AFFECT_LIVE


def _metadata(kind):
    return lambda guest, change: guest.dom.setMetadata(getattr(libvirt, kind), change.after, None, None, _live())


LIVE_MEMORY = LiveKind("memory", lambda change: "current_memory: %s" % change.show(change.after),
                       lambda guest, change: guest.dom.setMemoryFlags(change.after, _live()))
LIVE_VCPUS = LiveKind("vcpus", lambda change: "vcpus: %d" % change.after,
                      lambda guest, change: guest.dom.setVcpusFlags(change.after, _live()))
LIVE_TITLE = LiveKind("title", lambda change: change.what, _metadata("VIR_DOMAIN_METADATA_TITLE"))
LIVE_DESCRIPTION = LiveKind("description", lambda change: change.what, _metadata("VIR_DOMAIN_METADATA_DESCRIPTION"))
# New cloud-init seed content in the same volume: eject and re-insert it, so the guest sees a media change.
LIVE_SEED = LiveKind("seed-media", lambda change: "cloud-init seed media change",
                     lambda guest, change: guest.refresh_seed_media())
LIVE_BALLOON_STATS = LiveKind("balloon-stats", lambda change: "balloon.stats_period: %d" % change.after,
                              lambda guest, change: guest.dom.setMemoryStatsPeriod(change.after, _live()))
# Our own metadata: read from the persistent config, so a running guest needs nothing.
CONFIG_ONLY = LiveKind("config-only", lambda change: change.what, lambda guest, change: None)


# ---- fields with an XML place of their own shape ----------------------------------------------------------

class VcpuCurrent(Field):
    """``vcpus``: the vcpu element's ``current`` attribute, which libvirt omits when it equals the maximum."""

    def __init__(self):
        super().__init__("vcpus", "vcpu", "current", Int(minimum=1, maximum=MAX_VCPUS), live=LIVE_VCPUS)

    def read(self, elem):
        node = find_path(elem, "vcpu")
        if node is None:
            return None
        return int(node.get("current") or node.text)

    def write(self, elem, value):
        node = ensure_path(elem, "vcpu")
        if not (node.text or "").strip() or int(node.text) < value:
            node.text = str(value)
        if int(node.text) == value:
            node.attrib.pop("current", None)
        else:
            node.set("current", str(value))


class Firmware(Field):
    """``firmware``: bios or efi. libvirt's firmware autoselection (``<os firmware='efi'>``); a guest
    configured by hand with a pflash loader reads as efi, one with neither as bios."""

    def __init__(self):
        super().__init__("firmware", "os", "firmware", Choice("bios", "efi"))

    def read(self, elem):
        os_elem = elem.find("os")
        if os_elem is None:
            return "bios"
        if os_elem.get("firmware"):
            return os_elem.get("firmware")
        loader = os_elem.find("loader")
        return "efi" if loader is not None and loader.get("type") == "pflash" else "bios"

    def write(self, elem, value):
        os_elem = ensure_path(elem, "os")
        if value == "bios":
            os_elem.attrib.pop("firmware", None)
            for loader in os_elem.findall("loader") + os_elem.findall("nvram") + os_elem.findall("firmware"):
                os_elem.remove(loader)
        else:
            os_elem.set("firmware", value)


class SecureBoot(Field):
    """``secure_boot``: the firmware features secure-boot and enrolled-keys, and SMM, which they need."""

    def __init__(self):
        super().__init__("secure_boot", "os/firmware", PRESENCE, YesNo())

    def read(self, elem):
        feature = elem.find("os/firmware/feature[@name='secure-boot']")
        if feature is not None:
            return feature.get("enabled") == "yes"
        loader = elem.find("os/loader")
        return loader is not None and loader.get("secure") == "yes"

    def write(self, elem, value):
        firmware = ensure_path(elem, "os/firmware")
        for name in ("enrolled-keys", "secure-boot"):
            feature = firmware.find("feature[@name='%s']" % name)
            if feature is None:
                feature = etree.SubElement(firmware, "feature", enabled="no", name=name)
            feature.set("enabled", "yes" if value else "no")
        if value:
            ensure_path(elem, "features/smm").set("state", "on")


class VsockCid(Field):
    """``vsock_cid``: a fixed context ID for the vsock device (``<cid auto='no' address=.../>``). One libvirt picks
    (``auto='yes'``) reads as not declared, so a guest with an automatic CID never differs from its spec."""

    def __init__(self):
        super().__init__("vsock_cid", "devices/vsock/cid", "address", Int(minimum=3, maximum=4294967294))

    def read(self, elem):
        node = find_path(elem, self.path)
        if node is None or node.get("auto") == "yes":
            return None
        return self.codec.load(node.get("address"))

    def write(self, elem, value):
        vsock = find_path(elem, "devices/vsock")
        if vsock is None:
            vsock = etree.SubElement(ensure_path(elem, "devices"), "vsock", model="virtio")
        cid = ensure_path(vsock, "cid")
        cid.set("auto", "no")
        cid.set("address", self.codec.dump(value))


class VideoModel(Field):
    """``video``: the (first) video device's model. A change of model drops the memory sizes only QXL has
    (``ram``, ``vgamem``, ``vram64``) and the old model's ``vram``: libvirt gives the new model its defaults."""

    def __init__(self):
        super().__init__("video", "devices/video/model", "type",
                         Choice("virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none"))

    def write(self, elem, value):
        node = find_path(elem, self.path)
        if node is not None and node.get("type") != value:
            for name in ("ram", "vgamem", "vram64", "vram"):
                node.attrib.pop(name, None)
        super().write(elem, value)


class DisplayAgent(Toggle):
    """``spice_agent``, ``qemu_vdagent``: the guest's display agent channel (``com.redhat.spice.0``) of one type. The
    channel name is one port in the guest, so it has one type: switching one on replaces a channel of the other type,
    and a guest that has both (it cannot start) reads as neither, so that its read-back leaves them as they are."""

    def __init__(self, key, kind, template):
        super().__init__(key, "devices/channel[@type='%s'][target/@name='%s']" % (kind, DISPLAY_AGENT_CHANNEL),
                         "devices", template % DISPLAY_AGENT_CHANNEL)
        self.any_agent = "devices/channel[target/@name='%s']" % DISPLAY_AGENT_CHANNEL

    def read(self, elem):
        return bool(elem.xpath(self.xpath)) and len(elem.xpath(self.any_agent)) == 1

    def write(self, elem, value):
        if value:
            for node in elem.xpath(self.any_agent):
                node.getparent().remove(node)
        super().write(elem, value)


# Free text that libvirt's schema restricts (domaincommon.rng): checked value by value, naming the option.
ABS_PATH = Text("absFilePath")
CPUSET = Text("cpuset")
DEVICE_NAME = Text("deviceName")
HOST_NAME = Text("addrIPorName")
_POLICIES = Choice("force", "require", "optional", "disable", "forbid")
_LIFECYCLE = ("destroy", "restart", "preserve", "rename-restart")
AGENT_CHANNEL = "org.qemu.guest_agent.0"
DISPLAY_AGENT_CHANNEL = "com.redhat.spice.0"  # spice-vdagent's: clipboard sharing, resolution following the client

# Changing one of these needs the guest's UEFI variable store re-created (metadata.mark_nvram_reset).
NVRAM_RESET_KEYS = ("firmware", "secure_boot")

DOMAIN_FIELDS = [
    Field("virt_type", "", "type", Choice("kvm", "qemu")),
    Field("title", "title", codec=Text("objectNameWithSlash"), live=LIVE_TITLE),
    Field("description", "description", live=LIVE_DESCRIPTION),
    Field("memory", "memory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}),
    Field("current_memory", "currentMemory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}, live=LIVE_MEMORY),
    Field("max_vcpus", "vcpu", codec=Int(minimum=1, maximum=MAX_VCPUS)),
    VcpuCurrent(),
    Field("arch", "os/type", "arch"),
    # compared through the host's machine aliases (normalize); the schema writes this pattern inline
    Field("machine", "os/type", "machine", Text(pattern=r"[a-zA-Z0-9_\.\-]+")),
    Field("boot.kernel", "os/kernel", codec=ABS_PATH),
    Field("boot.initrd", "os/initrd", codec=ABS_PATH),
    Field("boot.cmdline", "os/cmdline"),
    Field("cpu.mode", "cpu", "mode", Choice("host-passthrough", "host-model", "custom", "maximum")),
    Field("cpu.model", "cpu/model"),
    Field("cpu.sockets", "cpu/topology", "sockets", Int(minimum=1)),
    Field("cpu.dies", "cpu/topology", "dies", Int(minimum=1)),
    Field("cpu.cores", "cpu/topology", "cores", Int(minimum=1)),
    Field("cpu.threads", "cpu/topology", "threads", Int(minimum=1)),
    Field("on_poweroff", "on_poweroff", codec=Choice(*_LIFECYCLE)),
    Field("on_reboot", "on_reboot", codec=Choice(*_LIFECYCLE)),
    Field("on_crash", "on_crash", codec=Choice(*_LIFECYCLE + ("coredump-destroy", "coredump-restart"))),
    Firmware(),
    SecureBoot(),
    Field("max_memory", "maxMemory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}),
    Field("max_memory_slots", "maxMemory", "slots", Int(minimum=1, maximum=255)),
    ElementList("boot.devices", "os", "boot", [("dev", "dev", Choice("hd", "cdrom", "network", "fd"))],
                shorthand="dev"),
    ElementList("cpu.features", "cpu", "feature", [("name", "name", Text("featureName")), ("policy", "policy", _POLICIES)],
                ordered=False, shorthand="name", defaults={"policy": "require"}),
    ElementList("cpu.numa", "cpu/numa", "cell", [("cpus", "cpus", CPUSET), ("memory", "memory", KiB(minimum=1024))],
                fixed={"unit": "KiB"}, index="id", required=("cpus", "memory")),
    ElementList("cputune.vcpupin", "cputune", "vcpupin",
                [("vcpu", "vcpu", Int(minimum=0, maximum=MAX_VCPUS - 1)), ("cpuset", "cpuset", CPUSET)],
                ordered=False, required=("vcpu", "cpuset")),
    Toggle("hugepages", "memoryBacking/hugepages", "memoryBacking", "<hugepages/>"),
    Toggle("tpm", "devices/tpm", "devices",
           "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"),
    Toggle("rng", "devices/rng", "devices",
           "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"),
    Toggle("guest_agent", "devices/channel[target/@name='%s']" % AGENT_CHANNEL, "devices",
           "<channel type='unix'><target type='virtio' name='%s'/></channel>" % AGENT_CHANNEL),
    # ---- the desktop's: video, the display agent channel (docs/domain.md, Desktops) ----
    VideoModel(),
    Field("video_heads", "devices/video/model", "heads", Int(minimum=1, maximum=16)),
    Field("video_accel3d", "devices/video/model/acceleration", "accel3d", YesNo("yes", "no")),
    DisplayAgent("spice_agent", "spicevmc", "<channel type='spicevmc'><target type='virtio' name='%s'/></channel>"),
    DisplayAgent("qemu_vdagent", "qemu-vdagent", "<channel type='qemu-vdagent'><source><clipboard copypaste='yes'/>"
                                                 "<mouse mode='client'/></source><target type='virtio' name='%s'/>"
                                                 "</channel>"),
    Field("watchdog.model", "devices/watchdog", "model", Choice("i6300esb", "ib700", "diag288", "itco")),
    Field("watchdog.action", "devices/watchdog", "action",
          Choice("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")),
    # ---- sharing with the host and devices (docs/domain.md) ----
    # vsock: a host<->guest socket; the context ID libvirt picks (auto) is never a difference
    Toggle("vsock", "devices/vsock", "devices", "<vsock model='virtio'><cid auto='yes'/></vsock>"),
    VsockCid(),
    # the crash notifier: isa (pvpanic) on x86, pseries on POWER, s390 on System z, hyperv for Windows
    Field("panic", "devices/panic", "model", Choice("isa", "pseries", "hyperv", "s390")),
    Field("balloon.model", "devices/memballoon", "model",
          Choice("virtio", "virtio-transitional", "virtio-non-transitional", "xen", "none")),
    Field("balloon.autodeflate", "devices/memballoon", "autodeflate", YesNo()),
    Field("balloon.free_page_reporting", "devices/memballoon", "freePageReporting", YesNo()),
    Field("balloon.stats_period", "devices/memballoon/stats", "period", Int(minimum=1), live=LIVE_BALLOON_STATS),
    # an intel IOMMU needs a q35 machine and brings the split I/O APIC it needs (requirements.py)
    Field("iommu", "devices/iommu", "model", Choice("intel", "smmuv3", "virtio")),
]
FIELD = {field.key: field for field in DOMAIN_FIELDS}
