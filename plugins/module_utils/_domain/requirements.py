# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a declared device needs elsewhere in the guest's document, set up with it. Each requirement is a
pure function of the planned document: it writes what is missing and returns the Changes (none when the guest has
it already, so a converged guest never differs), or raises SpecError naming the option when the guest cannot have
it. plan_domain runs them all after the fields and devices (REQUIREMENTS), with the document as it was before
(None for a new guest): a requirement acts only for a device this plan adds or changes, so a guest made elsewhere
without it (adopted, or read back and applied) is left as it is, and libvirt says what it lacks when it starts.

- vhost-user devices (a virtiofs share, a ``vhostuser`` NIC) run in another process that maps the guest's memory:
  the memory must be shared (``<memoryBacking><source type='memfd'/><access mode='shared'/>``; a guest whose
  memory is already shared, through ``memoryBacking`` or every NUMA cell's ``memAccess``, is left as it is).
- an intel IOMMU exists on a q35 machine only, and its interrupt remapping needs the split I/O APIC
  (``<features><ioapic driver='qemu'/>``).
- a USB device (a tablet, a redirection channel, a smartcard, a USB disk or sound card) needs a USB controller,
  which libvirt adds by itself on x86 only: elsewhere (aarch64 ``virt``) a ``qemu-xhci`` is added with it.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import Change, ensure_path
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree

# The devices that make QEMU share the guest's memory with another process, with the option that declares them.
VHOST_USER_DEVICES = (
    ("devices/filesystem[driver/@type='virtiofs']", "filesystems (driver: virtiofs)"),
    ("devices/interface[@type='vhostuser']", "interfaces (vhostuser)"),
)


def _added(root, before, xpath):
    """The elements matching ``xpath`` in ``root`` that ``before`` had not as they are (new or changed ones)."""
    had = set() if before is None else {_text(elem) for elem in before.xpath(xpath)}
    return [elem for elem in root.xpath(xpath) if _text(elem) not in had]


def _text(elem):
    return etree.tostring(elem, with_tail=False)


def _memory_shared(root):
    if root.find("memoryBacking/access[@mode='shared']") is not None:
        return True
    cells = root.findall("cpu/numa/cell")
    return bool(cells) and all(cell.get("memAccess") == "shared" for cell in cells)


def shared_memory(root, before):
    """Shared guest memory, where a vhost-user device (virtiofs, vhostuser NIC) is added."""
    users = [what for xpath, what in VHOST_USER_DEVICES if _added(root, before, xpath)]
    if not users or _memory_shared(root):
        return []
    backing = ensure_path(root, "memoryBacking")
    changes = []
    if backing.find("source") is None:
        etree.SubElement(backing, "source", type="memfd")
        changes.append(Change("memory_backing.source", None, "memfd (for %s)" % ", ".join(users)))
    access = ensure_path(backing, "access")
    changes.append(Change("memory_backing.access", access.get("mode"), "shared (for %s)" % ", ".join(users)))
    access.set("mode", "shared")
    return changes


def _machine(root):
    node = root.find("os/type")
    return None if node is None else node.get("machine")


def intel_iommu(root, before):
    """An intel IOMMU (added, or on a guest whose machine changed): refused on a machine that is not q35; brings the
    split I/O APIC."""
    if not _added(root, before, "devices/iommu[@model='intel'] | os/type"):
        return []
    if root.find("devices/iommu[@model='intel']") is None:
        return []
    machine = _machine(root)
    if machine is None or "q35" not in machine:
        raise SpecError("iommu", "intel", "an intel IOMMU needs a q35 machine (machine: q35); this guest's machine is "
                                          "%s" % (machine or "the hypervisor's default (pc)"))
    ioapic = root.find("features/ioapic")
    if ioapic is not None and ioapic.get("driver") == "qemu":
        return []
    before = None if ioapic is None else ioapic.get("driver")
    ensure_path(root, "features/ioapic").set("driver", "qemu")
    return [Change("features.ioapic", before, "qemu (for iommu: intel)")]


# The devices that sit on USB, with the option that declares them.
USB_DEVICES = (
    ("devices/input[@bus='usb']", "inputs (bus usb)"),
    ("devices/redirdev[@bus='usb']", "redirdevs"),
    ("devices/smartcard", "smartcards"),
    ("devices/disk[target/@bus='usb']", "disks (bus usb)"),
    ("devices/sound[@model='usb']", "sounds (usb)"),
)
# The architectures whose machines libvirt gives a USB controller by itself (x86's pc and q35: piix3-uhci, ich9).
USB_BY_DEFAULT = ("x86_64", "i686")


def usb_controller(root, before):
    """A USB controller (virt-install's qemu-xhci), where a USB device is added to a guest of an architecture whose
    machine libvirt gives none (aarch64 virt: "USB is disabled for this domain, but USB devices are present") and
    the guest has no USB controller. One declared off (``model='none'``) is the user's and kept: libvirt says so."""
    users = [what for xpath, what in USB_DEVICES if _added(root, before, xpath)]
    node = root.find("os/type")
    arch = None if node is None else node.get("arch")
    if not users or arch in USB_BY_DEFAULT or arch is None or root.find("devices/controller[@type='usb']") is not None:
        return []
    etree.SubElement(ensure_path(root, "devices"), "controller", type="usb", model="qemu-xhci", ports="15")
    return [Change("controller usb", None, "qemu-xhci (for %s)" % ", ".join(users))]


REQUIREMENTS = (shared_memory, intel_iommu, usb_controller)


def reconcile_requirements(root, before):
    """Run every requirement over the planned document (``before``: as it was, None for a new guest); return their
    Changes."""
    changes = []
    for requirement in REQUIREMENTS:
        changes.extend(requirement(root, before))
    return changes
