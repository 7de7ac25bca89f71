# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the desktop's device kinds - input devices, sound cards, audio backends, USB redirection channels,
smartcards (docs/domain.md, Desktops). Listed in devices.DEVICE_KINDS with the others."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Choice
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.device_kind import DeviceKind
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import Field, Option, parse_fields, read_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree


def _attributes_read_back(kind, elem):
    """Whether each of the device's own attributes that the kind's fields map is in its read-back: one that is not
    (a redirdev of type tcp, a smartcard's tcp channel) is a value the options do not offer, so the device is kept."""
    shown = kind.read_back(elem)
    return all(shown.get(field.key) is not None for field in kind.fields
               if field.path == "" and elem.get(field.where) is not None)


class _Positional(DeviceKind):
    """A kind whose devices are identified by their position among the guest's devices of the kind, as serials are;
    an item's options that it omits take the kind's ``defaults`` (so a read-back shows them and a build has them)."""

    defaults = {}

    def expressible(self, elem):
        return _attributes_read_back(self, elem) and super().expressible(elem)

    def key_of(self, elem):
        selected = self.select(elem.getparent())
        return selected.index(elem) if elem in selected else None  # one the options do not express: no position

    def normalize_item(self, raw, option):
        if not isinstance(raw, dict):
            raise SpecError(option.rstrip("."), raw, "expected a dict of %s" % ", ".join(f.key for f in self.fields))
        return dict(self.defaults, **super().normalize_item(raw, option))

    def build(self, spec):
        return etree.Element(self.tag, **{f.where: spec[f.key] for f in self.fields if f.path == "" and f.key in spec})


class Inputs(_Positional):
    """Input devices on the USB or virtio bus (a tablet: absolute pointing, the pointer follows the client's). The
    PS/2 mouse and keyboard libvirt adds to every x86 guest by itself are not this list's: they are kept."""

    name = "inputs"
    tag = "input"
    fields = (
        Field("type", "", "type", Choice("tablet", "mouse", "keyboard"), option={"default": "tablet"}),
        Field("bus", "", "bus", Choice("usb", "virtio"), option={"default": "usb"}),
    )
    defaults = {"type": "tablet", "bus": "usb"}

    def expressible(self, elem):
        return elem.get("bus") != "ps2" and super().expressible(elem)


class Sounds(_Positional):
    """Sound cards (their audio goes to the guest's audio backend: ``audio``)."""

    name = "sounds"
    tag = "sound"
    fields = (Field("model", "", "model", Choice("ich9", "ich6", "ich7", "ac97", "es1370", "sb16", "usb", "pcspk"),
                    option={"default": "ich9"}),)
    defaults = {"model": "ich9"}
    hotplug = False


class Audio(_Positional):
    """Audio backends (where the sound cards' audio goes: ``spice`` sends it to the SPICE client), ``id`` 1, 2, ... by
    position for a new one."""

    name = "audio"
    tag = "audio"
    fields = (Field("type", "", "type", Choice("spice", "none", "dbus", "pulseaudio", "pipewire", "alsa", "oss", "sdl",
                                               "jack", "file"), option={"default": "spice"}),)
    defaults = {"type": "spice"}
    hotplug = False

    def build(self, spec):
        return etree.Element(self.tag, id=str(spec["_key"] + 1), type=spec["type"])


class Redirdevs(_Positional):
    """USB redirection channels: a SPICE client plugs its local USB devices into the guest through one each. Given as a
    count (``redirdevs: 2``) or a list; attached and detached live."""

    name = "redirdevs"
    tag = "redirdev"
    fields = (
        Field("bus", "", "bus", Choice("usb"), option={"default": "usb"}),
        Field("type", "", "type", Choice("spicevmc"), option={"default": "spicevmc"}),
    )
    defaults = {"bus": "usb", "type": "spicevmc"}

    def argspec(self):
        return {"type": "raw"}

    def normalize(self, raw_list):
        if isinstance(raw_list, int) and not isinstance(raw_list, bool) and 0 <= raw_list <= 16:
            raw_list = [{} for _index in range(raw_list)]
        if not isinstance(raw_list, list):
            raise SpecError(self.name, raw_list, "expected a count from 0 to 16, or a list of dicts of bus, type")
        for index, raw in enumerate(raw_list):
            unknown = set(raw) - set(self.defaults) if isinstance(raw, dict) else ()
            if unknown:
                raise SpecError(self.option(index).rstrip("."), raw, "unknown key(s) %s; accepted: bus, type" %
                                ", ".join(sorted(unknown)))
        return super().normalize(raw_list)


class Smartcards(DeviceKind):
    """Smartcard readers, one of each mode, identified by mode: ``passthrough`` (a SPICE client's reader, through
    the ``spicevmc`` channel) or ``host`` (the host's NSS database); ``host-certificates`` ones are kept."""

    name = "smartcards"
    tag = "smartcard"
    fields = (Field("type", "", "type", Choice("spicevmc")),)
    options = (Option("mode", {"type": "str", "default": "passthrough", "choices": ["passthrough", "host"]}),)
    hotplug = False

    def expressible(self, elem):
        return _attributes_read_back(self, elem) and super().expressible(elem)

    def key_of(self, elem):
        return elem.get("mode")

    def label(self, key):
        return "smartcard %s" % key

    def normalize(self, raw_list):
        seen, result = set(), []
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            mode = Choice("passthrough", "host").parse(raw.get("mode") or "passthrough", option + "mode")
            if mode in seen:
                raise SpecError(option + "mode", mode, "one %s smartcard at most" % mode)
            seen.add(mode)
            spec = parse_fields(self.fields, raw, option)
            if mode == "host" and spec.get("type"):
                raise SpecError(option + "type", spec["type"], "a host smartcard has no type (only passthrough has)")
            if mode == "passthrough":
                spec.setdefault("type", "spicevmc")
            result.append(dict(spec, _key=mode))
        return result

    def read_back(self, elem):
        return dict({"mode": elem.get("mode")}, **read_fields(elem, self.fields))

    def build(self, spec):
        return etree.Element(self.tag, mode=spec["_key"])
