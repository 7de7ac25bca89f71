# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: guest profiles (shared parts of guest descriptions) and the fleet's plan as text. Pure; the
``guests`` role uses them through the collection's filters (plugins/filter/fleet.py)."""

from __future__ import annotations

import copy

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

PROFILE_KEYS = ("profile", "profiles")


def deep_merge(base, over):
    """``over`` merged into a copy of ``base``: dicts merge key by key, anything else (lists too) is replaced."""
    result = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply_profiles(guests, profiles):
    """Each guest with the profiles it names (``profile: web`` or ``profiles: [base, web]``, in order) merged
    under it: the guest's own keys win, dicts merge, lists are replaced. An unknown profile is an error."""
    profiles = profiles or {}
    result = []
    for index, guest in enumerate(guests or []):
        if not isinstance(guest, dict):
            raise UserError("guests_list[%d]: expected a dict (a guest's description), got %r" % (index, guest))
        key = "profiles" if guest.get("profiles") else "profile"
        names = guest.get(key) or []
        if isinstance(names, str):
            names = [names]
        merged = {}
        for name in names if isinstance(names, list) else [names]:
            if not isinstance(name, str):
                raise UserError("guests_list[%d] (%s).%s: expected a profile's name or a list of names, got %r" % (
                    index, guest.get("name"), key, guest.get(key)))
            if name not in profiles:
                raise UserError("guests_list[%d] (%s): profile %r is not in guests_profiles (it has: %s)" % (
                    index, guest.get("name"), name, ", ".join(sorted(profiles)) or "none"))
            merged = deep_merge(merged, profiles[name])
        result.append(deep_merge(merged, {k: v for k, v in guest.items() if k not in PROFILE_KEYS}))
    return result


def plan_lines(result, hypervisor=None):
    """A fleet result (check mode: the plan) as short lines: what is created, changed (live, or at the next
    boot and why), removed, or failed; an unchanged guest whose earlier change waits for its next boot (``>``); in
    a cluster also where each guest away from its home runs and why (``@``), what is held back (``?``) and which
    stale copies go (``-``). Other unchanged guests at home are counted, not listed."""
    lines = []
    prefix = "%s: " % hypervisor if hypervisor else ""
    for guest in result.get("guests") or []:
        name = guest["name"]
        if guest.get("error"):
            lines.append("%s! %s: %s" % (prefix, name, guest["error"]))
        elif guest.get("retired"):
            lines.append("%s- %s (%s)" % (prefix, name, guest.get("reason")))
        elif guest.get("removed"):
            lines.append("%s- %s" % (prefix, name))
        elif guest.get("created"):
            lines.append("%s+ %s" % (prefix, name))
        elif guest.get("changed"):
            what = "; ".join(guest.get("changes") or guest.get("actions") or [])
            if guest.get("adopted"):  # the marker (and tags) alone is "metadata only": nothing else of it changes
                rest = [c for c in guest.get("changes") or [] if not c.startswith(("metadata.managed:", "tags:"))]
                rest += guest.get("actions") or []
                what = "adopted, " + ("; ".join(rest) if rest else "metadata only")
            live = guest.get("applied_live") or []
            detail = " (live: %s)" % ", ".join(live) if live else ""
            if guest.get("reboot_required"):
                detail += " (at next boot: %s)" % "; ".join(guest.get("reasons") or [])
            lines.append("%s~ %s: %s%s" % (prefix, name, what, detail))
        elif guest.get("reboot_required"):  # unchanged by this run, but an earlier change waits for its next boot
            lines.append("%s> %s: waits for its next boot: %s" % (prefix, name, "; ".join(guest.get("reasons") or [])))
        if guest.get("placement") == "moved":
            lines.append("%s@ %s: home %s, runs here: %s" % (prefix, name, guest.get("home"), guest.get("why")))
        if guest.get("held"):
            lines.append("%s? %s: %s" % (prefix, name, guest.get("reason")))
    summary = result.get("summary") or {}
    line = "%s%d to create, %d to change, %d to remove, %d unchanged, %d failed" % (
        prefix, summary.get("created", 0), summary.get("updated", 0), summary.get("removed", 0),
        summary.get("unchanged", 0), summary.get("failed", 0))
    if summary.get("held"):
        line += ", %d held back" % summary["held"]
    waiting = sum(1 for guest in result.get("guests") or [] if guest.get("reboot_required") and not guest.get("error"))
    if waiting:
        line += ", %d waiting for a reboot" % waiting
    lines.append(line)
    return lines
