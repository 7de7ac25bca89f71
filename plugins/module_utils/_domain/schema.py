# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest's new definition against libvirt's schema, when its current one may already fail it.

libvirt validates a definition only when asked (virt-install does not ask), so a guest can be defined with parts the
schema refuses: a relative ``<loader>`` or ``<nvram template>`` path, a relative disk path. Refusing every later
change to such a guest would leave it unmanageable; letting a change add a schema error would not be safe. So: a
document that validates is written as always (checked here and by the daemon); one that fails only where the guest's
current definition already failed goes ahead without validation, with a warning naming those parts; one the change
makes fail is refused, naming the part and the option that wrote it. Pure: no libvirt calls.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import check_document
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import SchemaError, invalid_parts, plain_path

SCHEMA = "domain.rng"


def _within(relative, path):
    return bool(path) and (relative == path or relative.startswith(path + "/"))


def option_at(part):
    """The option that writes the element of an invalid part ('disks', 'boot.kernel'), or None (an element no
    option writes: it came from ``xml``, ``xml_edits`` or the guest as it was)."""
    steps = plain_path(part.path).split("/")[2:]  # after '' and 'domain'
    if len(steps) > 1 and steps[0] == "devices":
        for kind in DEVICE_KINDS:
            if kind.tag == steps[1]:
                inner = "/".join(steps[2:])
                field = next((f for f in kind.fields if f.path and _within(inner, f.path)), None)
                return "%s[].%s" % (kind.name, field.key) if field is not None else kind.name
    relative = "/".join(steps)
    fields = [f for f in DOMAIN_FIELDS if _within(relative, f.path)]
    return max(fields, key=lambda f: len(f.path)).key if fields else None


def _named(parts, edits=()):
    """Each part with the option that wrote it: an ``xml_edits`` entry whose xpath is that element (or its
    attribute), else the table's option."""
    named = []
    for part in parts:
        option = None
        for index, edit in enumerate(edits):
            target = plain_path(edit["xpath"].split("/@", 1)[0])
            if target == plain_path(part.path):
                option = "xml_edits[%d]" % index
        option = option or option_at(part)
        named.append("%s (option %s)" % (part.describe(), option) if option else part.describe())
    return "; ".join(named)


def check_guest_document(before, after, edits=()):
    """Check ``after`` (a guest's new definition) against libvirt's schema, given ``before`` (its current one, '' for a
    new guest) and the spec's ``xml_edits``. Returns True when it validates (write it with validation), or a warning
    when it fails only where ``before`` already failed (write it without: libvirt took ``before`` so). Raises
    SchemaError naming the part the change makes invalid, and the option that wrote it."""
    try:
        check_document("domain", after)
        return True
    except SchemaError as exc:
        refused = exc
    after_parts = invalid_parts(after, SCHEMA)
    known = {part.signature for part in invalid_parts(before, SCHEMA)} if before else set()
    new = [part for part in after_parts if part.signature not in known]
    if not after_parts:
        raise refused
    if new:
        raise SchemaError("the guest's new definition does not validate against libvirt's schema (%s) at %s. Nothing "
                          "was changed" % (SCHEMA, _named(new, edits)))
    them = "them" if len(after_parts) > 1 else "it"
    return ("the guest's definition already fails libvirt's schema (%s) at %s: libvirt took it without validating it. "
            "This change adds no schema error, so it was written without validation as well; correct %s to have the "
            "guest's definition checked again" % (SCHEMA, _named(after_parts, edits), them))
