# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest's recorded origin (its home hypervisor while it is evacuated), in its own metadata.

One element of our namespace, ``<origin:home uuid= uri= host= since=/>``, written into the guest's definition
by the migration that takes it away (so the record moves with the guest, atomically) and removed by the one
that brings it home. ``restore.yml`` reads it, so a restore works when the play that evacuated was lost.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import MOVED, ORIGIN
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string

NS = ORIGIN.namespace


def read_origin(root):
    """{"uuid", "uri", "host", "since"} of the guest's home (with "recovered" for a guest restarted by
    recover), or None (it is home, or was never moved away)."""
    return ORIGIN.read(root)


def origin_after(current, record, source, dest_uuid, dest_uri=None):
    """The origin a guest should carry on the destination: none once it reaches its home (by host UUID, or by
    URI for a record without one - a recovered guest's home did not answer); ``source`` ({"uuid", "uri",
    "host", "since"}) when ``record`` and it has none; else what it has."""
    if current and (current.get("uuid") and current["uuid"] == dest_uuid
                    or not current.get("uuid") and dest_uri and current.get("uri") == dest_uri):
        return None
    if current is None and record:
        return dict(source)
    return current


def read_last_move(root):
    """{"at", "by", "from"} of the guest's last migration, or None."""
    return MOVED.read(root)


def with_origin(xml, origin, last_move=None):
    """The domain XML with ``origin`` (None: without one) and, when given, the record of this move
    (``last_move``: {"at", "by", "from"}); other metadata stays as it is."""
    root = parse_xml(xml)
    ORIGIN.write(root, origin)
    if last_move is not None:
        MOVED.write(root, last_move)
    return to_string(root)
