# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: placement rules (affinity), declared in Git, honoured by every plan of _migrate/placement.py.

A rule (``kvmfleet_placement_rules`` in the inventory; docs/placement.md) is one of:

- ``together``: its guests run on one hypervisor (Proxmox VE's positive resource affinity, oVirt's positive
  VM-to-VM affinity); strict by default.
- ``apart``: no two of its guests run on one hypervisor (negative resource affinity); strict by default.
- ``on_hosts``: its guests run on the hosts listed, the higher ``priority`` first (node affinity); soft by
  default: another host is used when none of these can take the guest, and the plan says so.
- ``off_hosts``: its guests never run on the hosts listed; soft by default.

Its guests are named (``guests``) or selected by tags (``tags``: every tag given must match, as the inventory
plugin and prune select). Rules are about where guests *run*: a shut-off guest breaks none.

Pure functions over plain data: a rule as ``normalize`` returns it, a guest of the placement view
({"name", "host", "running", "tags"}), host names. A strict rule is never broken by a plan; a soft one only when
nothing else fits, and each such plan says which rule and why.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

KINDS = ("together", "apart", "on_hosts", "off_hosts")
STRICT_BY_DEFAULT = {"together": True, "apart": True, "on_hosts": False, "off_hosts": False}
KEYS = {"name", "kind", "guests", "tags", "hosts", "strict"}


def _option(index, key):
    return "kvmfleet_placement_rules[%d].%s" % (index, key)


def normalize(rules, host_names=None):
    """The rules as the plans read them: [{"name", "kind", "strict", "guests": [names] or None, "tags": {} or None,
    "hosts": [{"name", "priority"}] (highest priority first)}]. Bad input raises SpecError naming the option and
    what is accepted; a host a rule names that is not among ``host_names`` (when given) too."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise SpecError("kvmfleet_placement_rules", rules, "a list of rules ({name, kind, guests or tags, ...})")
    result, names = [], set()
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise SpecError("kvmfleet_placement_rules[%d]" % index, rule, "a rule: {name, kind, guests or tags, ...}")
        unknown = sorted(set(rule) - KEYS)
        if unknown:
            raise SpecError(_option(index, unknown[0]), rule[unknown[0]], "one of the keys %s" % ", ".join(sorted(KEYS)))
        name = rule.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(_option(index, "name"), name, "a name for the rule, unique among the rules")
        if name in names:
            raise SpecError(_option(index, "name"), name, "a name no other rule has")
        names.add(name)
        kind = rule.get("kind")
        if kind not in KINDS:
            raise SpecError(_option(index, "kind"), kind, "one of %s" % ", ".join(KINDS))
        guests, tags = rule.get("guests"), rule.get("tags")
        if (guests is None) == (tags is None):
            raise SpecError(_option(index, "guests"), guests, "either guests (a list of names) or tags (a dict), one of them")
        if guests is not None and (not isinstance(guests, list) or not all(isinstance(g, str) and g for g in guests)):
            raise SpecError(_option(index, "guests"), guests, "a list of guest names")
        if tags is not None and (not isinstance(tags, dict) or not tags
                                 or not all(isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in tags.items())):
            raise SpecError(_option(index, "tags"), tags, "a dict of tag: value, every one of which a guest must carry")
        strict = rule.get("strict", STRICT_BY_DEFAULT[kind])
        if not isinstance(strict, bool):
            raise SpecError(_option(index, "strict"), strict, "true or false")
        hosts = _hosts(index, kind, rule.get("hosts"), host_names)
        if kind in ("together", "apart") and guests is not None and len(set(guests)) < 2:
            raise SpecError(_option(index, "guests"), guests, "two guests or more (a %s rule relates guests)" % kind)
        result.append({"name": name, "kind": kind, "strict": strict,
                       "guests": sorted(set(guests)) if guests is not None else None,
                       "tags": {k: str(v) for k, v in tags.items()} if tags is not None else None, "hosts": hosts})
    return result


def _hosts(index, kind, hosts, host_names):
    if kind in ("together", "apart"):
        if hosts not in (None, []):
            raise SpecError(_option(index, "hosts"), hosts, "no hosts: a %s rule relates guests to each other" % kind)
        return []
    if not isinstance(hosts, list) or not hosts:
        raise SpecError(_option(index, "hosts"), hosts, "a list of hypervisors (inventory names, or {name, priority})")
    result = []
    for entry in hosts:
        name, priority = (entry, 0) if isinstance(entry, str) else (
            (entry.get("name"), entry.get("priority", 0)) if isinstance(entry, dict) else (None, 0))
        if not isinstance(name, str) or not name or isinstance(priority, bool) or not isinstance(priority, int):
            raise SpecError(_option(index, "hosts"), entry, "an inventory name, or {name, priority} with a whole number")
        if host_names is not None and name not in host_names:
            raise SpecError(_option(index, "hosts"), name, "one of the hypervisors: %s" % ", ".join(sorted(host_names)))
        result.append({"name": name, "priority": priority})
    return sorted(result, key=lambda h: (-h["priority"], h["name"]))


def members(rule, guests):
    """The names of the guests (placement view) a rule covers, sorted."""
    if rule["guests"] is not None:
        return [g for g in rule["guests"] if any(x["name"] == g for x in guests)]
    return sorted(g["name"] for g in guests
                  if all(str((g.get("tags") or {}).get(k)) == v for k, v in rule["tags"].items()))


class Rules:
    """The rules over one set of guests: which rules cover which guest, and whether a guest may run on a host
    given where the others run (``where``: {guest: host} of the running guests)."""

    def __init__(self, rules, guests):
        self.rules = rules
        self.covered = {r["name"]: members(r, guests) for r in rules}
        self.of = {}
        for rule in rules:
            for name in self.covered[rule["name"]]:
                self.of.setdefault(name, []).append(rule)

    def __bool__(self):
        return bool(self.rules)

    def broken_by(self, guest, host, where):
        """The rules ``guest`` running on ``host`` would break, with where the others run (``where``, the guest itself
        left out): [(rule, reason)]."""
        broken = []
        for rule in self.of.get(guest, ()):
            others = [(g, where[g]) for g in self.covered[rule["name"]] if g != guest and g in where]
            if rule["kind"] == "together":
                away = sorted("%s on %s" % (g, h) for g, h in others if h != host)
                if away:
                    broken.append((rule, "together with %s" % ", ".join(away)))
            elif rule["kind"] == "apart":
                near = sorted(g for g, h in others if h == host)
                if near:
                    broken.append((rule, "apart from %s, which runs on %s" % (", ".join(near), host)))
            elif rule["kind"] == "on_hosts":
                if host not in [h["name"] for h in rule["hosts"]] and rule.get("arch"):
                    broken.append((rule, "%s runs no %s guests (its libvirt offers no emulator for them)"
                                   % (host, rule["arch"])))
                elif host not in [h["name"] for h in rule["hosts"]]:
                    broken.append((rule, "on %s only" % ", ".join(h["name"] for h in rule["hosts"])))
            elif host in [h["name"] for h in rule["hosts"]]:
                broken.append((rule, "never on %s" % host))
        return broken

    def strict_broken(self, guest, host, where):
        return [(r, why) for r, why in self.broken_by(guest, host, where) if r["strict"]]

    def soft_broken(self, guest, host, where):
        return [(r, why) for r, why in self.broken_by(guest, host, where) if not r["strict"]]

    def priority(self, guest, host):
        """The highest node-affinity priority ``host`` has for ``guest`` (0 when no rule lists it)."""
        found = [h["priority"] for r in self.of.get(guest, ()) if r["kind"] == "on_hosts"
                 for h in r["hosts"] if h["name"] == host]
        return max(found) if found else 0

    def together_with(self, guest):
        """The guests a strict together rule binds to ``guest`` (itself included), transitively."""
        group, todo = {guest}, [guest]
        while todo:
            name = todo.pop()
            for rule in self.of.get(name, ()):
                if rule["kind"] == "together" and rule["strict"]:
                    for other in self.covered[rule["name"]]:
                        if other not in group:
                            group.add(other)
                            todo.append(other)
        return sorted(group)

    def violations(self, where):
        """Every rule the placement ``where`` ({guest: host} of the running guests) breaks:
        [{"rule", "kind", "strict", "guests", "reason"}], each rule once."""
        found = []
        for rule in self.rules:
            placed = [(g, where[g]) for g in self.covered[rule["name"]] if g in where]
            reason = None
            if rule["kind"] == "together" and len({pair[1] for pair in placed}) > 1:
                reason = "its guests run on %s" % ", ".join(sorted("%s (%s)" % (h, g) for g, h in placed))
            elif rule["kind"] == "apart":
                shared = {}
                for guest, host in placed:
                    shared.setdefault(host, []).append(guest)
                together = ["%s on %s" % (" and ".join(sorted(gs)), h) for h, gs in sorted(shared.items()) if len(gs) > 1]
                if together:
                    reason = "%s" % "; ".join(together)
            elif rule["kind"] in ("on_hosts", "off_hosts"):
                listed = [h["name"] for h in rule["hosts"]]
                wrong = sorted("%s on %s" % (g, h) for g, h in placed if (h in listed) != (rule["kind"] == "on_hosts"))
                if wrong:
                    reason = ", ".join(wrong)
            if reason:
                found.append({"rule": rule["name"], "kind": rule["kind"], "strict": rule["strict"],
                              "guests": sorted(pair[0] for pair in placed), "reason": reason})
        return found


def allowed_hosts(rules, guest, host_names):
    """The hosts ``guest``'s strict on_hosts/off_hosts rules leave it."""
    hosts = set(host_names)
    for rule in rules.of.get(guest, ()):
        if not rule["strict"]:
            continue
        listed = {h["name"] for h in rule["hosts"]}
        if rule["kind"] == "on_hosts":
            hosts &= listed
        elif rule["kind"] == "off_hosts":
            hosts -= listed
    return hosts


def feasibility(rules, guests, host_names):
    """What makes the strict rules impossible to keep, with the hosts there are (``host_names``): a list of
    sentences, each naming the rules. Empty when they can all hold."""
    problems = []
    names = sorted({g["name"] for g in guests})
    for guest in names:
        if rules.of.get(guest) and not allowed_hosts(rules, guest, host_names):
            strict = sorted(r["name"] for r in rules.of[guest] if r["strict"] and r["kind"] in ("on_hosts", "off_hosts"))
            problems.append("rules %s leave %s no hypervisor to run on" % (", ".join(strict), guest))
    seen_groups = set()
    for guest in names:
        group = tuple(rules.together_with(guest))
        if len(group) < 2 or group in seen_groups:
            continue
        seen_groups.add(group)
        common = set(host_names)
        for member in group:
            common &= allowed_hosts(rules, member, host_names)
        binding = sorted({r["name"] for m in group for r in rules.of.get(m, ()) if r["kind"] == "together" and r["strict"]})
        if not common:
            problems.append("rules %s keep %s together, but their host rules leave them no hypervisor in common"
                            % (", ".join(binding), ", ".join(group)))
        for rule in rules.rules:
            if rule["kind"] == "apart" and rule["strict"]:
                both = sorted(set(rules.covered[rule["name"]]) & set(group))
                if len(both) > 1:
                    problems.append("rule %s keeps %s apart, but rules %s keep them together"
                                    % (rule["name"], " and ".join(both), ", ".join(binding)))
    for rule in rules.rules:
        if rule["kind"] != "apart" or not rule["strict"]:
            continue
        covered = rules.covered[rule["name"]]
        usable = set()
        for guest in covered:
            usable |= allowed_hosts(rules, guest, host_names)
        if len(covered) > len(usable):
            problems.append("rule %s keeps %d guests apart (%s), but they have %d hypervisor(s) to run on"
                            % (rule["name"], len(covered), ", ".join(covered), len(usable)))
    return problems
