# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which of the host's guests a description means. Pure: a function of what libvirt has under the
declared name and under the declared UUID (read by the caller, apply.py), so every rule is unit-tested with
plain values.

A guest is its name, and also its UUID when the description declares one (``uuid``): a guest renamed in the
description (in Git) is then the same guest, renamed in libvirt, not a new one beside the old. libvirt renames
only a guest that is shut off (virDomainRename); a running one keeps its old name until it is shut off and the
task runs again. A UUID never changes: a guest found by its name with another UUID is refused.
"""

from __future__ import annotations

from collections import namedtuple

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, Wording

# What the description means on this host:
KEEP = "keep"  # the guest of that name (or a new one, when there is none): as without a UUID
RENAME = "rename"  # the guest with the declared UUID, shut off, under another name: rename it, then converge it
PENDING = "rename_pending"  # the same, running: converge it under its current name; renamed once it is shut off
ELSEWHERE = "elsewhere"  # state absent, no guest of that name, the UUID is another name's: left alone

# ``what``: one of the above; ``current``: the guest's libvirt name now (the other name, for RENAME, PENDING and
# ELSEWHERE; None otherwise).
Identity = namedtuple("Identity", "what current")


def guest_identity(spec, named_uuid, with_uuid):
    """Which guest ``spec`` (normalised) means.

    ``named_uuid``: the UUID of the guest called ``spec['name']``, None when there is none; ``with_uuid``: (name,
    active) of the guest that has the declared UUID, when there is no guest of that name (None: there is none,
    or it was not looked up). Raises SpecError (option ``uuid``) when the guest of that name has another UUID:
    before anything changes, in check mode too.
    """
    declared, name = spec.get("uuid"), spec["name"]
    if declared is None:
        return Identity(KEEP, None)
    if named_uuid is not None:
        if named_uuid.lower() != declared:
            raise SpecError("uuid", declared, "guest %s exists with UUID %s, and a guest's UUID cannot change. To make "
                                              "a different guest, give it a different name, or remove the old one first "
                                              "(state: absent, with its own UUID or none)" % (name, named_uuid.lower()))
        return Identity(KEEP, None)
    if with_uuid is None:
        return Identity(KEEP, None)
    current, active = with_uuid
    if spec["state"] == "absent":
        return Identity(ELSEWHERE, current)
    return Identity(PENDING if active else RENAME, current)


def pending_warning(current, name):
    """The warning a running guest renamed in its description gets, on every run until it is renamed."""
    return Wording.apply("guest %s has the UUID declared for %s: it is converged under its current name, and keeps "
                         "the name %s until it is shut off and the task runs again (libvirt renames only a guest that "
                         "is shut off)" % (current, name, current))


def elsewhere_warning(current, name):
    """The warning ``state: absent`` gets when the declared UUID is another name's guest, which it leaves alone."""
    return Wording.apply("guest %s has the UUID declared for %s and was not removed: state absent removes only a "
                         "guest named %s" % (current, name, name))
