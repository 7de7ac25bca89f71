# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the collection's own ``<metadata>`` in a guest: the managed marker, the user's tags,
content hashes of the cloud-init seed and the Ignition config, and a pending NVRAM reset.

Everything lives in one element of our namespace (_metadata.GUEST, its one reader), so other tools'
metadata stays as it is.
"""

from __future__ import annotations

import copy

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import short_hash
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import CONFIG_ONLY
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import Change, ensure_path
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml


def q(tag):
    """A tag in our namespace."""
    return GUEST.q(tag)


def _guest_node(root):
    return GUEST.find(root)


def read_tags(root):
    """The tags stored in our metadata namespace, or None when the guest is not marked as ours."""
    node = _guest_node(root)
    if node is None:
        return None
    return {t.get("name"): t.get("value") for t in node.iterfind(q("tag"))}


def tags_match(tags, wanted):
    """Whether a guest's tags (dict, or None when unmanaged) carry every wanted tag.

    ``wanted`` is a list of names, or a dict of name: value (a null value matches any value).
    """
    if not wanted:
        return True
    tags = tags or {}
    if isinstance(wanted, dict):
        return all(k in tags and (v is None or tags[k] == str(v)) for k, v in wanted.items())
    return all(str(name) in tags for name in wanted)


def is_managed(root):
    return _guest_node(root) is not None


def reconcile_metadata(root, tags):
    """Mark the guest as managed by kvmfleet and store its tags; other tools' metadata stays as it is."""
    changes = []
    metadata = ensure_path(root, "metadata")
    node = metadata.find(q("guest"))
    if node is None:
        node = etree.SubElement(metadata, GUEST.qname, nsmap={GUEST.prefix: GUEST.namespace})
        node.set("managed", "true")
        changes.append(Change("metadata.managed", None, True, CONFIG_ONLY))
    current = {t.get("name"): t.get("value") for t in node.iterfind(q("tag"))}
    if tags is not None and current != tags:
        for old in node.findall(q("tag")):
            node.remove(old)
        for name in sorted(tags):
            tag = etree.SubElement(node, q("tag"), name=name)
            if tags[name] is not None:
                tag.set("value", tags[name])
        changes.append(Change("tags", current, tags, CONFIG_ONLY))
    return changes


def only_metadata(before, after):
    """Whether two documents (``before``: text, ``after``: parsed) differ in the collection's own element only (the
    marker, the tags, ...). Such a change is written with virDomainSetMetadata (to the config, as a define would),
    never a define: libvirt renormalises a document it is given (controllers reordered, a console's port
    renumbered), and adopting a guest must leave the rest of its definition byte for byte as it was."""
    if not before:
        return False
    trees = [parse_xml(before), copy.deepcopy(after)]
    for root in trees:
        GUEST.write(root, None)
        etree.indent(root, space="  ")
    return etree.tostring(trees[0], method="c14n") == etree.tostring(trees[1], method="c14n")


def adopts(changes):
    """Whether the changes take a guest the collection did not manage under management (its marker is added)."""
    return any(c.what == "metadata.managed" for c in changes)


def guest_element(root):
    """The collection's element in a document (to write with GUEST.set_element_on), or None."""
    return _guest_node(root)


def mark_nvram_reset(root, pending):
    """Whether the guest's UEFI variable store must be re-created from its template at the next start.

    A firmware or secure boot change needs it (the old store keeps its enrolled keys); it is done
    only on a start this collection makes, and the mark keeps it pending until then.
    """
    node = _guest_node(root)
    if node is None:
        return
    if pending:
        node.set("nvram-reset", "pending")
    else:
        node.attrib.pop("nvram-reset", None)


def nvram_reset_pending(root):
    node = _guest_node(root)
    return node is not None and node.get("nvram-reset") == "pending"


def content_node(root, tag):
    return root.find("metadata/%s/%s" % (q("guest"), q(tag)))


def stored_hash(root, tag):
    """The content hash kept in our metadata for 'cloud-init' or 'ignition', or None."""
    node = content_node(root, tag)
    return None if node is None else node.get("hash")


def reconcile_content_hash(root, tag, what, wanted, live=None, extra=None):
    """Keep ``wanted`` (a content hash) in ``<kvmfleet:TAG hash=.../>``, with ``extra`` attributes written along with
    a new hash (the seed's target dev); a Change naming only hash prefixes."""
    current = stored_hash(root, tag)
    if current == wanted:
        return []
    node = content_node(root, tag)
    if node is None:
        node = etree.SubElement(_guest_node(root), q(tag))
    node.set("hash", wanted)
    for name, value in (extra or {}).items():
        node.set(name, value)
    return [Change(what, "content " + short_hash(current) if current else None, "content " + short_hash(wanted), live)]


def drop_content_node(root, tag):
    """Remove ``<kvmfleet:TAG>`` (a seed no longer declared); (its attributes, a Change) or (None, None)."""
    node = content_node(root, tag)
    if node is None:
        return None, None
    attrs = dict(node.attrib)
    node.getparent().remove(node)
    return attrs, Change(tag.replace("-", "_"), "content " + short_hash(attrs.get("hash") or ""), None)


def mask_content_hashes(root):
    """Content hashes in a --diff: a prefix shows a change, too little to test guesses of a secret."""
    for tag in ("cloud-init", "ignition"):
        node = content_node(root, tag)
        if node is not None and node.get("hash"):
            node.set("hash", short_hash(node.get("hash")) + "...")
