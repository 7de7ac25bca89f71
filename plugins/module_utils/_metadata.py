# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the collection's own elements in libvirt objects' ``<metadata>``, each declared once with its
one reader and writer. Other tools' metadata is never touched.

- ``GUEST``: a guest the collection manages (the marker, the user's tags, content hashes, a pending NVRAM
  reset); its content is reconciled by _domain/metadata.py;
- ``ORIGIN``: where an evacuated or recovered guest came from (its home), _migrate/origin.py;
- ``MOVED``: when, by what and from where the guest last moved (a migration writes it; rebalance's cooldown reads
  it), _migrate/origin.py;
- ``SNAPSHOT_MARK``: when the guest's disks were last as a snapshot left them, _snapshot;
- ``MAINTENANCE``: a hypervisor's cordon, in the metadata of a network of ours, _host/maintenance.py.

A record is read and written in a document (``read``, ``write``) or on a running guest with
``virDomainSetMetadata`` (``set_on``: config, and live when it runs, without a define).
"""

from __future__ import annotations

import copy

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string


class Record:
    """One element of ours in ``<metadata>``: namespace, prefix (also setMetadata's key), tag, and the
    attributes it carries (its fields, in order; ``optional`` ones are read only when they are there)."""

    def __init__(self, namespace, prefix, tag, fields=(), optional=()):
        self.namespace, self.prefix, self.tag = namespace, prefix, tag
        self.fields, self.optional = tuple(fields), tuple(optional)

    @property
    def qname(self):
        return "{%s}%s" % (self.namespace, self.tag)

    def q(self, tag):
        """A child tag in this record's namespace."""
        return "{%s}%s" % (self.namespace, tag)

    def find(self, root):
        """The element in a document's <metadata> (``root``: a parsed document or its text), or None."""
        root = parse_xml(root) if isinstance(root, (str, bytes)) else root
        return root.find("metadata/" + self.qname)

    def read(self, root):
        """{field: value} of the element's attributes (None where absent), or None when there is no element."""
        node = self.find(root)
        if node is None:
            return None
        values = {field: node.get(field) for field in self.fields}
        values.update((field, node.get(field)) for field in self.optional if node.get(field) is not None)
        return values

    def element(self, values):
        """A new element carrying ``values`` (fields with a None value are left out), in the namespace."""
        node = etree.Element(self.qname, nsmap={self.prefix: self.namespace})
        for field in self.fields + self.optional:
            if values.get(field) is not None:
                node.set(field, str(values[field]))
        return node

    def write(self, root, values):
        """Put ``values`` in the document (None: remove the element; an empty <metadata> goes too). Returns
        the new element or None."""
        metadata = root.find("metadata")
        if metadata is not None:
            for old in metadata.findall(self.qname):
                metadata.remove(old)
        if values is None:
            if metadata is not None and len(metadata) == 0:
                root.remove(metadata)
            return None
        if metadata is None:
            metadata = etree.SubElement(root, "metadata")
        node = self.element(values)
        metadata.append(node)
        return node

    def set_element_on(self, dom, node, flags):
        """Write one element of ours with its children (``node``, from a document; None removes it) on a guest through
        virDomainSetMetadata: libvirt puts the element and its children in this record's namespace."""
        import libvirt  # pylint: disable=import-outside-toplevel  # only the modules that talk to libvirt get here
        text = None
        if node is not None:
            bare = copy.deepcopy(node)
            for elem in bare.iter(etree.Element):
                elem.tag = etree.QName(elem).localname
            etree.cleanup_namespaces(bare)
            text = to_string(bare)
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, self.prefix, self.namespace, flags)

    def set_on(self, dom, values, flags):
        """Write (or with None, remove) the element on a guest through virDomainSetMetadata: no define, so the
        rest of its definition stays byte for byte as it is."""
        self.set_element_on(dom, None if values is None else self.element(values), flags)


GUEST = Record("https://kvmfleet.dev/xmlns/libvirt/guest/1", "kvmfleet", "guest", ("managed", "nvram-reset"))
ORIGIN = Record("https://kvmfleet.dev/xmlns/libvirt/origin/1", "origin", "home", ("uuid", "uri", "host", "since"),
                optional=("recovered", "by"))
# when the guest last moved, by what, from which host: the cooldown of rebalance (_migrate/placement.py)
MOVED = Record("https://kvmfleet.dev/xmlns/libvirt/move/1", "kvmfleet-move", "last", ("at", "by", "from"))
SNAPSHOT_MARK = Record("https://kvmfleet.dev/xmlns/libvirt/snapshot/1", "kvmfleet-snapshot", "mark", ("snapshot", "time"))
MAINTENANCE = Record("https://kvmfleet.dev/xmlns/libvirt/maintenance/1", "kvmfleet", "maintenance", ("reason", "since"))
