# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: codecs, the values of the field tables. A codec normalises a value both ways (``parse`` the
user's, ``load`` libvirt's, ``dump`` to XML, ``show`` as a user writes it) and says its option's type in
the argument spec. Sizes and their units, schema-checked text, and the names libvirt keeps as file names.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, register_value_type, schema_value_error


# ---- sizes --------------------------------------------------------------------------------------

_UNITS = {
    "b": 1, "bytes": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
    "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3,
    "t": 1024 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value, option, default_unit="MiB"):
    """A size in bytes from an int (in ``default_unit``) or a string such as '2GiB', '512 MiB', '10G'."""
    accepted = ("expected a whole number of %s, or a size with a unit such as 512MiB, 2GiB or 10G" % default_unit)
    if isinstance(value, bool):
        raise SpecError(option, value, accepted)
    if isinstance(value, int):
        if value < 0:
            raise SpecError(option, value, accepted)
        return value * _UNITS[default_unit.lower()]
    match = _SIZE_RE.match(str(value))
    if not match:
        raise SpecError(option, value, accepted)
    number, unit = match.groups()
    factor = _UNITS.get((unit or default_unit).lower())
    if factor is None:
        raise SpecError(option, value, accepted)
    size = float(number) * factor
    if size != int(size):
        raise SpecError(option, value, "%s (it must come to a whole number of bytes)" % accepted)
    return int(size)


def parse_disk_size(value, option):
    """A disk or volume size in bytes. It must carry its unit: a bare number is refused, not guessed.

    (Until 0.2 a bare number meant GiB in ``disks[].size`` and MiB in the volume module's ``size``;
    now one rule holds for every disk size, and no playbook silently gets a size it did not mean.)
    """
    match = None if isinstance(value, bool) else _SIZE_RE.match(str(value))
    if match and not match.group(2):
        raise SpecError(option, value, "a disk size needs its unit, such as %sGiB or %sMiB (a bare number is not "
                                       "taken: it used to mean GiB in disks[].size and MiB in a volume's size)"
                        % (match.group(1), match.group(1)))
    if not match:
        raise SpecError(option, value, "expected a size with its unit, such as 20GiB, 512MiB or 10G")
    return parse_size(value, option)


def format_size(nbytes):
    """A short human form: the largest binary unit that divides the size exactly."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _UNITS[unit.lower()]
        if nbytes and nbytes % factor == 0:
            return "%d%s" % (nbytes // factor, unit)
    return "%dB" % nbytes


# ---- codecs: spec value <-> normalised value <-> XML string --------------------------------------

class Codec:
    """Text as it is. Subclasses normalise: ``parse`` takes the user's value, ``load`` the XML's.

    ``argspec`` is the option's entry in the module's argument spec (type, choices), so that a field's
    type is declared once, here.
    """

    argtype = "str"

    def argspec(self):
        return {"type": self.argtype}

    def parse(self, value, option):
        return None if value is None else str(value)

    def load(self, text):
        return text

    def dump(self, value):
        return str(value)

    def show(self, value):
        """The normalised value as a user would write it in a spec (for read-back)."""
        return value


class Text(Codec):
    """Text that libvirt's schema restricts: the value is checked against the schema's own definition
    (``schema``: a data type defined in ``schema_file``, such as 'diskSerial' in domaincommon.rng), or
    against ``pattern`` where the schema writes the pattern inline, so that bad input names its option
    instead of failing the whole document's validation."""

    def __init__(self, schema=None, pattern=None, schema_file="domaincommon.rng", accepted=None):
        self.schema, self.schema_file = schema, schema_file
        self.pattern = None if pattern is None else re.compile(pattern)
        self.accepted = accepted
        if schema and etree is not None:
            register_value_type(schema, schema_file)

    def parse(self, value, option):
        if value is None:
            return None
        if isinstance(value, (dict, list, bool)):
            raise SpecError(option, value, "expected a string")
        text = str(value)
        bad = bool(self.pattern and not self.pattern.fullmatch(text))
        if not bad and self.schema:
            bad = bool(schema_value_error(text, self.schema, self.schema_file))
        if bad:
            raise SpecError(option, value, self.accepted or "libvirt's schema does not accept it (%s)" % (
                "pattern %s" % self.pattern.pattern if self.pattern else "%s in %s" % (self.schema, self.schema_file)))
        return text


class Int(Codec):
    argtype = "int"

    def __init__(self, minimum=None, maximum=None):
        self.minimum, self.maximum = minimum, maximum

    def parse(self, value, option):
        if value is None:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if number is None or isinstance(value, bool) or (isinstance(value, float) and value != number) \
                or (self.minimum is not None and number < self.minimum) \
                or (self.maximum is not None and number > self.maximum):
            raise SpecError(option, value, "expected a whole number%s" % self._range())
        return number

    def _range(self):
        if self.minimum is not None and self.maximum is not None:
            return " from %d to %d" % (self.minimum, self.maximum)
        if self.minimum is not None:
            return " of at least %d" % self.minimum
        return ""

    def load(self, text):
        try:
            return None if text is None else int(text, 0)
        except ValueError:
            return text

    def dump(self, value):
        return str(int(value))


class Choice(Codec):
    def __init__(self, *choices):
        self.choices = choices

    def argspec(self):
        return {"type": "str", "choices": list(self.choices)}

    def parse(self, value, option):
        if value is None:
            return None
        if str(value) not in self.choices:
            raise SpecError(option, value, "expected one of: %s" % ", ".join(self.choices))
        return str(value)


class YesNo(Codec):
    """libvirt's on/off or yes/no attributes, as booleans in the spec."""

    argtype = "bool"

    def __init__(self, true="on", false="off"):
        self.true, self.false = true, false

    def parse(self, value, option):
        if value is None or isinstance(value, bool):
            return value
        raise SpecError(option, value, "expected true or false")

    def load(self, text):
        return None if text is None else text == self.true

    def dump(self, value):
        return self.true if value else self.false


class Mac(Codec):
    _RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

    def parse(self, value, option):
        if value is None:
            return None
        mac = str(value).strip().lower().replace("-", ":")
        if not self._RE.match(mac) or int(mac[:2], 16) & 1:
            raise SpecError(option, value, "expected a unicast MAC address such as 52:54:00:12:34:56")
        return mac

    def load(self, text):
        return None if text is None else text.lower()


class KiB(Codec):
    """Sizes stored as ``<elem unit='KiB'>n</elem>``; spec values in MiB or with a unit."""

    argtype = "raw"  # an int (MiB) or a string with a unit

    def __init__(self, default_unit="MiB", minimum=0):
        self.default_unit = default_unit
        self.minimum = minimum  # in KiB

    def parse(self, value, option):
        if value is None:
            return None
        nbytes = parse_size(value, option, self.default_unit)
        if nbytes % 1024:
            raise SpecError(option, value, "expected a size that is a whole number of KiB")
        if nbytes // 1024 < self.minimum:
            raise SpecError(option, value, "expected a size of at least %s" % format_size(self.minimum * 1024))
        return nbytes // 1024

    def load(self, text):
        return None if text is None else int(text)

    def show(self, value):
        return format_size(value * 1024)


# ---- names that libvirt (and this collection) turn into file names ---------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ObjectName(Codec):
    """The name of a guest, network, pool or volume.

    libvirt keeps each of these as a file name (``/etc/libvirt/qemu/NAME.xml``, the volume's own
    file, NVRAM and Ignition files named after the guest), and its schema allows almost anything
    else; its drivers refuse '/' only at define time, and for a guest named '.' or '..' they act on
    the directories that name resolves to. One rule for all of them, checked before anything is
    written and in check mode alike: 1 to ``max_bytes`` bytes (UTF-8), no '/', no control
    characters, not '.' or '..'.
    """

    def __init__(self, what, max_bytes=200):
        self.what, self.max_bytes = what, max_bytes

    def parse(self, value, option):
        text = value if isinstance(value, str) else None
        if not text or "/" in text or text in (".", "..") or _CONTROL.search(text) \
                or len(text.encode("utf-8")) > self.max_bytes:
            raise SpecError(option, value, "expected a %s name of 1 to %d bytes without '/' or control characters, "
                                           "and not '.' or '..' (libvirt keeps it as a file name)"
                            % (self.what, self.max_bytes))
        return text


GUEST_NAME = ObjectName("guest")
NETWORK_NAME = ObjectName("network")
POOL_NAME = ObjectName("pool")
VOLUME_NAME = ObjectName("volume", 255)  # a file in the pool's directory: the file system's limit


# ---- UUIDs ------------------------------------------------------------------------------------------

# libvirt's own UUID syntax (virUUIDParse): 32 hex digits in either case, '-' or ' ' before any pair of them,
# whitespace around the whole. The canonical form is lowercase 8-4-4-4-12, as libvirt writes it.
_UUID_SPACE = "\t\n\v\f\r "
_UUID_RE = re.compile(r"[%s]*(?:[- ]*[0-9a-fA-F]{2}){16}[%s]*" % (_UUID_SPACE, _UUID_SPACE))


def parse_uuid(value, option):
    """A UUID in any form libvirt accepts, as libvirt writes it: lowercase 8-4-4-4-12. SpecError otherwise."""
    if value is None:
        return None
    text = value if isinstance(value, str) else None
    if text is None or not _UUID_RE.fullmatch(text):
        raise SpecError(option, value, "expected a UUID: 32 hexadecimal digits, such as "
                                       "4dea22b3-1d52-d8f3-2516-782e98ab3fa0 (dashes or spaces between digit pairs "
                                       "are taken, as libvirt takes them)")
    digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def confined_path(directory, filename, option):
    """``directory/filename``, refused unless it stays inside ``directory`` once resolved (no '..',
    no separator, no symlink that points elsewhere). For files the collection names after user input."""
    VOLUME_NAME.parse(filename, option)
    path = os.path.join(directory, filename)
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(directory):
        raise SpecError(option, filename, "the file %s would resolve outside %s (a symlink?); refused" % (path, directory))
    return path
