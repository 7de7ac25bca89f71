# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest's description (module parameters) checked and normalised into a spec.

``normalize_guest`` is pure and raises SpecError, naming the option, on bad input: before anything
is written, in check mode as in a real run. The spec it returns is never changed afterwards (the
plan derives MACs, the seed's target and disk formats into its own result).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import normalize_cloud_init, normalize_ignition
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS, IGNITION_DIR
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import GUEST_NAME, confined_path, parse_uuid
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import parse_fields

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import XMLInputError, etree, parse_xml, to_string


def _normalize_tags(tags):
    if tags is None:
        return None
    if isinstance(tags, dict):
        return {str(k): (None if v is None else str(v)) for k, v in tags.items()}
    if isinstance(tags, (list, tuple)):
        return {str(t): None for t in tags}
    raise SpecError("tags", tags, "expected a list of names or a dict of name: value")


def normalize_guest(params, host):
    """A guest's description -> its normalised spec. ``host`` gives the machine aliases (HostContext).
    For ``state: absent`` only the name and the UUID matter (and are checked)."""
    spec = {"name": GUEST_NAME.parse(params["name"], "name"), "state": params.get("state") or "present",
            "autostart": params.get("autostart"),
            # the guest's identity beside its name: a guest renamed in the description stays the same guest
            "uuid": parse_uuid(params.get("uuid"), "uuid")}
    if spec["state"] == "absent":
        return spec
    spec.update(parse_fields(DOMAIN_FIELDS, params))
    if spec.get("machine"):
        # libvirt stores the canonical machine type of the guest's arch: 'pc' comes back as 'pc-i440fx-7.2',
        # a ppc64le guest's 'pseries' as 'pseries-7.2'.
        spec["machine"] = host.canonical_machine(spec.get("arch"), spec["machine"])
    if spec.get("memory") is not None and spec.get("current_memory") is None:
        spec["current_memory"] = spec["memory"]
    if spec.get("current_memory") is not None and spec.get("memory") is not None \
            and spec["current_memory"] > spec["memory"]:
        raise SpecError("current_memory", params.get("current_memory"),
                        "it must not exceed memory (%s)" % params.get("memory"))
    if spec.get("vcpus") is not None and spec.get("max_vcpus") is not None and spec["vcpus"] > spec["max_vcpus"]:
        raise SpecError("vcpus", params.get("vcpus"), "it must not exceed max_vcpus (%s)" % params.get("max_vcpus"))
    if spec.get("secure_boot") and spec.get("firmware", "efi") != "efi":
        raise SpecError("secure_boot", True, "secure boot needs firmware: efi")
    if spec.get("secure_boot") and spec.get("firmware") is None:
        spec["firmware"] = "efi"
    if spec.get("max_memory") is not None and spec.get("max_memory_slots") is None:
        spec["max_memory_slots"] = 16
    if spec.get("watchdog.action") is not None and spec.get("watchdog.model") is None:
        spec["watchdog.model"] = "i6300esb"
    if spec.get("vsock_cid") is not None:
        if spec.get("vsock") is False:
            raise SpecError("vsock_cid", spec["vsock_cid"], "a fixed CID needs the vsock device (vsock: true)")
        spec["vsock"] = True
    if spec.get("balloon.model") is None and any(spec.get("balloon." + key) is not None
                                                 for key in ("autodeflate", "free_page_reporting", "stats_period")):
        spec["balloon.model"] = "virtio"
    if spec.get("spice_agent") and spec.get("qemu_vdagent"):  # both are the guest's com.redhat.spice.0 channel
        raise SpecError("qemu_vdagent", True, "give at most one of spice_agent and qemu_vdagent")
    for kind in DEVICE_KINDS:  # each device list through its kind (devices.py)
        if params.get(kind.name) is not None:
            spec[kind.name] = kind.normalize(params[kind.name])
    if params.get("cloud_init") is not None:
        spec["cloud_init"] = _normalize_seed(params["cloud_init"], spec)
    if params.get("ignition") is not None:
        config, digest = normalize_ignition(params["ignition"])
        spec["ignition"] = {"config": config, "hash": digest, "path": ignition_path(spec["name"])}
    spec["tags"] = _normalize_tags(params.get("tags"))
    spec["xml_edits"] = _normalize_xml_edits(params.get("xml_edits") or [])
    spec["xml"] = params.get("xml")
    if spec["xml"] is not None:
        try:
            parse_xml(spec["xml"])
        except XMLInputError as exc:
            raise SpecError("xml", "(document)", "expected a libvirt domain XML document: %s" % exc) from None
    return spec


def _normalize_xml_edits(edits):
    result = []
    for index, edit in enumerate(edits):
        option = "xml_edits[%d]" % index
        if not isinstance(edit, dict) or not edit.get("xpath"):
            raise SpecError(option + ".xpath", edit, "each edit needs an xpath")
        actions = [k for k in ("value", "attributes", "fragment", "absent") if edit.get(k) not in (None, False)]
        if len(actions) != 1:
            raise SpecError(option, edit, "give exactly one of value, attributes, fragment or absent: true")
        try:
            etree.XPath(edit["xpath"])
        except etree.XPathSyntaxError as exc:
            raise SpecError(option + ".xpath", edit["xpath"], "expected a valid XPath (%s)" % exc) from None
        fragment = None
        if actions[0] == "fragment":
            try:
                fragment = parse_xml(edit["fragment"])
            except XMLInputError as exc:
                raise SpecError(option + ".fragment", edit["fragment"], "expected one XML element (%s)" % exc) from None
        if actions[0] == "attributes" and not isinstance(edit["attributes"], dict):
            raise SpecError(option + ".attributes", edit["attributes"], "expected a dict of attribute: value")
        result.append({"option": option, "xpath": edit["xpath"], "action": actions[0],
                       "value": edit.get(actions[0]), "fragment": None if fragment is None else to_string(fragment)})
    return result


def _normalize_seed(raw, spec):
    seed = normalize_cloud_init(raw, "cloud_init", spec["name"])
    seed["source"] = ("volume", tuple(sorted({"pool": seed["pool"], "volume": seed["volume"]}.items())))
    for index, disk in enumerate(spec.get("disks") or []):
        if seed["target"] and disk["_key"] == seed["target"]:
            raise SpecError("cloud_init.target", seed["target"],
                            "disks[%d] has that target dev; give the seed cdrom a target of its own" % index)
        if disk["source"] == seed["source"]:
            raise SpecError("cloud_init.volume", seed["volume"],
                            "disks[%d] is that volume; the seed volume is attached by cloud_init itself" % index)
    return seed


def ignition_path(guest_name, option="name"):
    """The guest's Ignition file, confined to IGNITION_DIR (the guest name is checked before this)."""
    return confined_path(IGNITION_DIR, "%s.ign" % guest_name, option)
