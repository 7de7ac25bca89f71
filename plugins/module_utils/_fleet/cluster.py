# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: one copy of every guest. The Git description (which hypervisor lists each guest: its home) and
the cluster's moves (evacuate, rebalance, recover, migrate) composed, as pure functions of data.

- ``describe``: every hypervisor's list as one description. A guest listed on two hypervisors, or a UUID
  declared for two names, is a spec error before any change, naming both.
- ``locate``: where each declared guest is, from the cluster view (``cluster_info``: one bulk read of every
  hypervisor of the group): its copies (by declared UUID, else by name and the collection's marker), which one
  is current, which are stale, and what the view cannot know (a hypervisor that did not answer).
- ``assign``: what one hypervisor's ``fleet`` task does: converge the declared guests that are there (whatever
  their home), create those that are nowhere at their home, retire the stale copies it holds (their disks
  kept), hold back what could be a second copy of a guest on a hypervisor that did not answer, and refuse to
  touch a guest that runs twice or whose current copy cannot be told. Prune keeps every declared guest.

The home is not a pin: a guest moved away is converged where it is, never created again at home. Going home is
an explicit act (restore.yml).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import parse_uuid
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

_RUNNING = ("running", "paused")


def _uuid(value):
    """A UUID as libvirt writes it (lowercase 8-4-4-4-12); a value that is none is kept as it is (lowercased), so
    that it matches nothing."""
    if not value:
        return None
    try:
        return parse_uuid(str(value), "uuid")
    except UserError:
        return str(value).strip().lower()


def describe(hosts):
    """``hosts``: [(hypervisor, [guest specs, profiles applied])] in the group's order. The description:
    [{"name", "uuid", "home", "index", "spec"}]; raises UserError (invalid_option) naming every guest that two
    hypervisors list (by name, or by declared UUID)."""
    guests, by_name, by_uuid, errors = [], {}, {}, []
    for home, specs in hosts:
        for index, spec in enumerate(specs or []):
            if not isinstance(spec, dict) or not spec.get("name"):
                errors.append("%s guests_list[%d]: a guest needs a name" % (home, index))
                continue
            where = "%s guests_list[%d]" % (home, index)
            name = spec["name"]
            try:
                uuid = parse_uuid(spec.get("uuid"), "uuid")
            except UserError as exc:
                errors.append("%s (%s): %s" % (where, name, exc))
                continue
            if name in by_name:
                errors.append("guest %s is listed by two hypervisors: %s and %s. A guest has one home: list it on "
                              "one of them" % (name, by_name[name], where))
                continue
            if uuid and uuid in by_uuid:
                errors.append("UUID %s is declared for two guests: %s and %s (%s). A UUID names one guest"
                              % (uuid, by_uuid[uuid][1], name, where))
                continue
            by_name[name] = where
            if uuid:
                by_uuid[uuid] = (where, name)
            guests.append({"name": name, "uuid": uuid, "home": home, "index": index, "spec": spec})
    if errors:
        raise UserError("nothing was changed: the fleet's description is wrong:\n%s" % "\n".join(errors),
                        code="invalid_option", result={"option": "guests_list"})
    return guests


def _host_of(view, name):
    for host in view["hypervisors"]:
        if host["name"] == name:
            return host
    return None


def _origin_is(origin, host):
    """Whether a recorded origin names ``host`` (by host UUID, else by URI)."""
    if not origin or not host:
        return False
    if origin.get("uuid") and host.get("host_uuid"):
        return origin["uuid"] == host["host_uuid"]
    return bool(origin.get("uri")) and origin.get("uri") == host.get("uri")


class _Index:
    """The view's guests by UUID and by name, so that finding a declared guest's copies does not scan the view."""

    def __init__(self, view):
        self.by_uuid, self.by_name = {}, {}
        for guest in view["guests"]:
            self.by_uuid.setdefault(_uuid(guest.get("uuid")), []).append(guest)
            self.by_name.setdefault(guest["name"], []).append(guest)

    def copies(self, declared):
        """The copies of a declared guest on the hypervisors that answered: by its declared UUID; without one, by
        its name, carrying the collection's marker (or at its home, where the fleet adopts a guest of that name)."""
        if declared["uuid"]:
            return list(self.by_uuid.get(declared["uuid"], ()))
        return [g for g in self.by_name.get(declared["name"], ())
                if g.get("managed") or g["hypervisor"] == declared["home"]]


def _current(view, copies):
    """(the current copy, None) or (None, conflict) among several copies none of which runs: the one that
    recorded moving away from the hypervisor of every other copy (a recovered or evacuated guest carries its
    home), when exactly one did."""
    winners = []
    for copy in copies:
        others = [c for c in copies if c is not copy]
        if all(_origin_is(copy.get("origin"), _host_of(view, other["hypervisor"])) for other in others):
            winners.append(copy)
    if len(winners) == 1:
        return winners[0], None
    return None, "defined_twice"


def _moved(copy, home):
    """Why a guest is not at its home, in words, from its recorded origin."""
    origin = copy.get("origin") or {}
    if not origin:
        return "moved without a record of its origin"
    by = "recovered" if origin.get("recovered") else origin.get("by") or "a migration"
    since = " since %s" % origin["since"] if origin.get("since") else ""
    left = origin.get("host") or home
    if origin.get("recovered"):
        return "recovered from %s%s" % (left, since)
    return "moved from %s%s by %s" % (left, since, by)


def locate(view, declared, index=None):
    """Where one declared guest is, and what to do: {"name", "home", "at" (the hypervisor that converges it, or
    None), "copy" (the current copy, or None), "stale" [copies to retire], "conflict" (a code, or None),
    "held" (a code, or None), "hold_start" (bool), "reason"}."""
    unknown = [h["name"] for h in view["hypervisors"] if not h.get("reachable")]
    copies = (index or _Index(view)).copies(declared)
    running = [c for c in copies if c.get("active")]
    spec = declared["spec"]
    place = {"name": declared["name"], "home": declared["home"], "at": None, "copy": None, "stale": [],
             "conflict": None, "held": None, "hold_start": False, "reason": None, "copies": [c["hypervisor"] for c in copies]}
    silent = ", ".join(unknown)
    if len(running) > 1:
        place.update(conflict="runs_twice", reason="it runs on %s: the same guest twice. Nothing was changed for it: "
                     "stop the copy that should not run" % " and ".join(c["hypervisor"] for c in running))
        return place
    if running:
        current = running[0]
    elif len(copies) > 1:
        current, conflict = _current(view, copies)
        if conflict:
            place.update(conflict=conflict, reason="it is defined on %s, shut off, and no copy recorded moving away "
                         "from the others: which one is current cannot be told. Nothing was changed for it: remove "
                         "the stale definition (its disks are the guest's)" % " and ".join(c["hypervisor"] for c in copies))
            return place
    elif copies:
        current = copies[0]
    else:
        current = None
    if current is None:
        if spec.get("state") == "absent":
            place.update(at=declared["home"] if declared["home"] not in unknown else None)
            return place
        if unknown:
            place.update(held="location_unknown", reason="not created: %s did not answer, and the guest may be "
                         "defined or run there; it is created when every hypervisor of the group answers" % silent)
            return place
        place.update(at=declared["home"])
        return place
    place.update(at=current["hypervisor"], copy=current, stale=[c for c in copies if c is not current])
    wants_running = spec.get("state") in _RUNNING
    if unknown and wants_running and not current.get("active"):
        place.update(hold_start=True, held="location_unknown", reason="not started: %s did not answer, and the guest "
                     "may run there; it is started when every hypervisor of the group answers (or by recover.yml)"
                     % silent)
    if current["hypervisor"] != declared["home"]:
        place["moved"] = _moved(current, declared["home"])
    return place


def assign(view, description, me):
    """What hypervisor ``me``'s fleet task does: {"guests": [specs to converge here], "cluster": the fleet
    module's ``cluster`` option}. Pure over the cluster view and the description."""
    return assign_all(view, description, [me])[me]


def assign_all(view, description, hypervisors):
    """``assign`` for each of ``hypervisors`` at once ({name: part}): each declared guest is located once."""
    parts = {me: {"guests": [], "retire": [], "hold": [], "conflicts": [], "placement": []} for me in hypervisors}
    answering = [h["name"] for h in view["hypervisors"] if h.get("reachable")]
    index = _Index(view)
    for declared in description:
        place = locate(view, declared, index)
        name = declared["name"]
        if place["conflict"]:
            for me in place["copies"] or [declared["home"]]:
                if me in parts:
                    parts[me]["conflicts"].append({"name": name, "code": place["conflict"], "reason": place["reason"]})
            continue
        for copy in place["stale"]:
            # a guest of the same name that is not ours (no marker, another UUID) is not a copy to remove
            ours = copy.get("managed") or copy.get("uuid") == place["copy"].get("uuid")
            if copy["hypervisor"] in parts and ours:
                parts[copy["hypervisor"]]["retire"].append({
                    "name": copy["name"], "uuid": copy["uuid"], "code": "stale_copy",
                    "reason": "a stale copy of %s: the guest is on %s (%s)" % (
                        name, place["at"], "running" if place["copy"].get("active") else "shut off")})
        if place["at"] in parts:
            spec = dict(declared["spec"])
            if place["hold_start"]:
                spec["state"] = "present"
            parts[place["at"]]["guests"].append(spec)
            where = {"name": name, "home": declared["home"], "runs_on": place["at"],
                     "why": place.get("moved") or "at home", "code": "moved" if place.get("moved") else "at_home"}
            if place["copy"] is not None and place["copy"]["name"] != name:
                where["was_named"] = place["copy"]["name"]
            parts[place["at"]]["placement"].append(where)
        # a guest held back where it is; or, when it is nowhere, by its home - or, when its home is silent too, by
        # the first hypervisor that answers, so that the run says it
        reporter = place["at"] or (declared["home"] if declared["home"] in answering else (answering or [None])[0])
        if place["held"] and reporter in parts:
            parts[reporter]["hold"].append({"name": name, "code": place["held"], "reason": place["reason"]})
    declared = [{"name": d["name"], "uuid": d["uuid"]} for d in description]
    return {me: {"guests": part.pop("guests"), "cluster": dict(part, hypervisor=me, declared=declared)}
            for me, part in parts.items()}
