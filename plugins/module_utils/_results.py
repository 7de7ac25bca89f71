# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what goes back to the user. One error class, one way to build a diff, one wording for
what check mode assumes.

Nothing here imports the rest of the collection, so every other module can use it.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure whose message is meant for the user as it is: bad input, a refused operation, a
    missing library. Every module fails with its text (see _libvirt.run_guarded); any other error
    is reported with the object it happened to."""


class SpecError(UserError, ValueError):
    """Bad input, found before anything changed. The message names the option and what is accepted."""

    def __init__(self, option, value, accepted):
        self.option, self.value, self.accepted = option, value, accepted
        super().__init__("option %s: got %r; %s" % (option, value, accepted))

    def under(self, prefix):
        """The same error for an option nested under ``prefix`` ('disks[0].' + 'size')."""
        return SpecError(prefix + self.option, self.value, self.accepted)


def diff(before, after, header):
    """A --diff entry: ``before`` and ``after`` are strings (serialised the same way by the caller, see
    _xml.xml_diff) or dicts (a spec-level view); '' or {} for a side that does not exist."""
    return {"before": before, "after": after, "before_header": header, "after_header": header}


def assumed(kind, name, what="does not exist yet"):
    """The warning check mode gives when it predicts on an object that does not exist (or run) yet: in
    check mode the earlier task of the play that makes it made nothing (DESIGN.md, contract 3)."""
    return ("check mode: %s %s %s; assuming an earlier task makes it (a real run fails here if it does not)"
            % (kind, name, what))
