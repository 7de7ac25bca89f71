# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: input every module refuses before anything else, whatever option it comes in.

Two things Ansible's own argument checking lets through or turns into a traceback: a dict option (or a list of dicts)
given a number or a list (Ansible's validator fails with "argument of type 'int' is not iterable", naming nothing),
and a string holding a character XML cannot hold (NUL, most control characters), which would fail deep in the XML
writer. ``shape_problems`` and ``xml_unsafe`` find them over the parameters and their argument spec, and name the
option (a value of a no_log option is never shown).
"""

from __future__ import annotations

import re

_NOT_XML = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def shape_problems(argument_spec, params, prefix=""):
    """['option ipv4: expected a dict, got int', ...] for raw parameters whose shape the argument spec's suboptions
    cannot take; the option paths as the modules name them (disks[0].size)."""
    problems = []
    for name, spec in (argument_spec or {}).items():
        value = (params or {}).get(name)
        option = prefix + name
        if value is None or not spec.get("options"):
            continue
        if spec.get("type") == "dict":
            if isinstance(value, dict):
                problems.extend(shape_problems(spec["options"], value, option + "."))
            elif not isinstance(value, str):  # a string Ansible parses itself (JSON, k=v), or refuses naming it
                problems.append("option %s: expected a dict, got %s" % (option, type(value).__name__))
        elif spec.get("type") == "list" and spec.get("elements") == "dict":
            if not isinstance(value, list):
                problems.append("option %s: expected a list of dicts, got %s" % (option, type(value).__name__))
                continue
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    problems.extend(shape_problems(spec["options"], item, "%s[%d]." % (option, index)))
                else:
                    problems.append("option %s[%d]: expected a dict, got %s" % (option, index, type(item).__name__))
    return problems


def xml_unsafe(argument_spec, params, prefix="", hidden=False):
    """The first (option, shown value) whose string holds a character XML cannot hold, or None. Dicts and lists are
    walked (a raw option's content too); a no_log option's value is shown as '(hidden)'."""
    for name, value in (params or {}).items():
        spec = (argument_spec or {}).get(name) or {}
        found = _unsafe_in(value, prefix + str(name), spec.get("options"), hidden or bool(spec.get("no_log")))
        if found:
            return found
    return None


def _unsafe_in(value, option, options, hidden):
    if isinstance(value, str):
        if _NOT_XML.search(value):
            return option, "(hidden)" if hidden else value
        return None
    if isinstance(value, dict):
        return xml_unsafe(options or {}, {str(k): v for k, v in value.items()}, option + ".", hidden) or next(
            (found for found in (_unsafe_in(str(k), option, None, hidden) for k in value) if found), None)
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unsafe_in(item, "%s[%d]" % (option, index), options, hidden)
            if found:
                return found
    return None
