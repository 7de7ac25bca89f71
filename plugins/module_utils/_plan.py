# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one plan type. What converging one object changes, computed by a pure function of (what
the object is now, what the spec wants), and how ``changed`` and ``--diff`` come from it, in one place.

- a document plan: the object's persistent XML before ('' when it does not exist) and after (a guest, a
  network, a pool);
- a view plan: the object's spec-level view before ({} or {"state": "absent"}) and after, holding only what
  differs (a volume, a guest's snapshots, a host's maintenance mark), or a few lines of text (``text=True``: a
  seed volume's content hash);
- a file plan (``FileWrite``): a file's text before (None: it does not exist) and after (host tuning, the
  daemons' configuration).

``changed`` is ``created`` or ``before != after``; ``diff()`` is {} when nothing changes, else the before/after
entry (an XML document serialised the same way on both sides, secrets masked by ``mask``).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import diff as diff_entry
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string


class Plan:
    """What converging one object changes.

    ``header``: how the --diff names it ('network lab (persistent config)'); ``before``/``after``: its document
    or view; ``changes``: the _fields.Change list the reconcile found; ``actions``: the writes in words;
    ``created``: it does not exist yet; ``mask(xml, compare_to)``: hides secrets in a document's --diff; ``text``:
    string sides are plain text, not XML documents; ``derived``: what the plan worked out on the way, kept as
    attributes (a pool's type, a guest's NIC MACs).
    """

    def __init__(self, header, before, after, changes=(), created=False, actions=(), mask=None, text=False,
                 **derived):
        self.header = header
        self.text = text
        self.before, self.after = before, after
        self.changes = list(changes)
        self._created = created
        self.actions = list(actions)
        self.mask = mask
        self.__dict__.update(derived)

    @property
    def created(self):
        """Whether the object does not exist yet (the plan makes it)."""
        return self._created

    @property
    def changed(self):
        return bool(self.created or self.before != self.after)

    def describe(self):
        """Each change as 'field: before -> after', with values as a user writes them (secrets never shown)."""
        return [change.describe() for change in self.changes]

    def diff(self):
        """The --diff entry: {} when nothing changes."""
        if not self.changed:
            return {}
        before, after = self.before, self.after
        if not self.text and (isinstance(after, str) or isinstance(before, str)):
            before, after = _document(before), _document(after)
            if self.mask is not None:
                before, after = self.mask(before), self.mask(after, before)  # both from the unmasked documents
        return diff_entry(before, after, self.header)


def _document(xml):
    """A document as both sides of a --diff show it (serialised the same way), '' for none."""
    return to_string(parse_xml(xml)) + "\n" if xml else ""


class FileWrite(Plan):
    """One file to write on the host the module runs on: ``path`` (where it is written), its text before (None
    when it does not exist) and after, the ``mode`` it is written with; ``header`` names it in --diff and in
    the actions (the path as the host sees it, by default ``path``). ``secret``: its content never shows in
    --diff; ``mask(text)`` hides secret values in it. ``persistent`` is false for a kernel knob (a sysfs or
    procfs file written in place, reported as the action 'what: before -> after', never in --diff)."""

    def __init__(self, path, before, after, mode=0o644, secret=False, persistent=True, what=None, header=None,
                 mask=None, gid=None, **derived):
        super().__init__(header or path, before, after, mask=mask, text=True, **derived)
        self.path, self.mode, self.secret, self.persistent, self.what = path, mode, secret, persistent, what
        self.gid = gid

    @property
    def action(self):
        if self.persistent:
            return "write %s" % self.header
        return "%s: %s -> %s" % (self.what, self.before, self.after.strip())

    def diff(self):
        if not self.changed or not self.persistent:
            return {}
        if self.secret:
            return diff_entry("(hidden)", "(hidden)", self.header)
        mask = self.mask or (lambda text: text)
        return diff_entry(mask(self.before or ""), mask(self.after), self.header)
