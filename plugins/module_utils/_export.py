# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a running estate written out as a GitOps inventory (the ``gitops_export`` module, playbooks/export.yml).

Each hypervisor's guests, read back by domain_info (their friendly specs: valid input for the domain module, which
leave out what they cannot express and keep it as it is), become the ``guests_list`` of ``host_vars/<hypervisor>.yml``
in the inventory directory, for the guests role; its networks and pools, read back by host_info, its
``networks_list`` and ``storage_pools`` (for the networks and storage roles), each with its state and autostart.
Converging the exported inventory against the same hypervisors adopts the guests the collection did not manage (their
marker, metadata only), and then changes nothing.

- A guest defined on several hypervisors is listed once: by the hypervisor where it runs (else the first of the
  list); the others' copies are named in a note (the guests role retires them as stale copies).
- Secrets are never written: domain_info names the options that hold one (``secrets``), and the file says, in a
  comment, that each is left out (left out, the host's value stays) and how to declare it from a vault.
- Files: only ``host_vars/<name>.yml`` under the target directory, for names that are plain file names; never
  through a symbolic link; a file the export did not write (its first line says who did) is overwritten only with
  ``force``; each written to a temporary file beside it and renamed into place.

``plan_files`` is pure (tested without a disk); ``write_files`` does the writing.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.common.yaml import yaml_dump

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._files import replace_file
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError

MARK = "# Written by kvmfleet.libvirt.gitops_export"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_FIRST = ("name", "uuid")  # the identity first, then the spec as domain_info reads it


def export_argument_spec():
    return {
        "dest": {"type": "path", "required": True},
        "hypervisors": {"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "uri": {"type": "str"},
            "guests": {"type": "list", "elements": "dict", "required": True},
            "networks": {"type": "list", "elements": "dict"},
            "pools": {"type": "list", "elements": "dict"},
        }},
        "force": {"type": "bool", "default": False},
    }


def dump_yaml(data):
    return yaml_dump(data, default_flow_style=False, sort_keys=False, width=120)


def run_export(_conn, params, check):
    """The gitops_export module's run: plan the files, write them (unless ``check``), say what changed."""
    files = write_files(params["dest"], plan_files(params["dest"], params["hypervisors"], dump_yaml), params["force"],
                        check)
    diffs = [item.pop("diff") for item in files]
    return {"changed": any(item["state"] != "unchanged" for item in files), "files": files,
            "diff": [d for d, item in zip(diffs, files) if item["state"] != "unchanged"]}


def check_name(name, option):
    """A hypervisor's name as a file name of host_vars/: letters, digits, '_', '.', '-', not starting with '.'."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise SpecError(option, name, "expected an inventory host name usable as a file name (letters, digits, "
                                      "'_', '.', '-'; no '/', no leading '.', no control characters)")
    return name


def _entry(guest):
    spec = dict(guest.get("spec") or {}, name=guest["name"])
    spec.pop("managed", None)
    if guest.get("uuid"):
        spec["uuid"] = guest["uuid"]
    return dict([(key, spec[key]) for key in _FIRST if key in spec] +
                [(key, value) for key, value in spec.items() if key not in _FIRST])


def assign(hypervisors):
    """{hypervisor: ([guest entries], [notes])} from ``hypervisors`` ([{name, guests: domain_info's guests}], in
    order). A guest defined on several hypervisors (by name) is listed once: where it runs, else by the first."""
    copies = {}
    for index, hv in enumerate(hypervisors):
        for guest in hv.get("guests") or []:
            copies.setdefault(guest["name"], []).append((index, hv["name"], guest))
    parts = {hv["name"]: ([], []) for hv in hypervisors}
    for name in sorted(copies):
        found = copies[name]
        running = [c for c in found if c[2].get("active")]
        index, home, guest = (running or found)[0]
        entries, notes = parts[home]
        entries.append(_entry(guest))
        for option in guest.get("secrets") or []:
            notes.append("%s: %s is set on the host and not written here. Left out, the host's value stays; to "
                         "declare it, put it in a vault and refer to it (password: \"{{ vault_%s_%s }}\")"
                         % (name, option, re.sub(r"[^A-Za-z0-9]+", "_", name), re.sub(r"[^A-Za-z0-9]+", "_", option)))
        others = [c[1] for c in found if c[1] != home]
        if others:
            notes.append("%s: also defined on %s; listed here, where it %s" % (
                name, ", ".join(others), "runs" if running else "is defined first"))
    return parts


def _objects(items, what, notes):
    """host_info's networks or pools as the networks and storage roles' items: each one's spec, with its state and
    autostart as they are. A transient one (no persistent definition) cannot be declared, and is named in a note."""
    entries = []
    for item in items or []:
        if item.get("spec") is None:
            notes.append("%s %s is of a kind the %s module does not manage, and is not listed"
                         % (what, item["name"], what))
            continue
        if not item.get("persistent", True):
            notes.append("%s %s is transient (libvirt keeps no definition of it) and is not listed" % (what, item["name"]))
            continue
        entries.append(dict(item["spec"], state="active" if item.get("active") else "inactive",
                            autostart=bool(item.get("autostart"))))
    return sorted(entries, key=lambda entry: entry["name"])


def render(hypervisor, uri, data, notes, dump):
    """The text of host_vars/<hypervisor>.yml (``data``: its variables; ``dump``: a YAML dumper of data)."""
    lines = ["%s (playbooks/export.yml) from %s." % (MARK, uri or hypervisor),
             "# Export again to refresh it; edits are kept only if export is not run with force."]
    lines.extend("# NOTE %s" % note for note in notes)
    return "---\n" + "\n".join(lines) + "\n" + dump(data)


def plan_files(dest, hypervisors, dump):
    """[{path (relative to dest), hypervisor, text, guests}] for the export; SpecError for a name that is not a
    plain file name. Pure."""
    for index, hv in enumerate(hypervisors):
        check_name(hv.get("name"), "hypervisors[%d].name" % index)
    names = [hv["name"] for hv in hypervisors]
    if len(set(names)) != len(names):
        raise SpecError("hypervisors", names, "each hypervisor once")
    parts = assign(hypervisors)
    files = []
    for hv in hypervisors:
        entries, notes = parts[hv["name"]]
        data = {}
        if hv.get("networks") is not None:
            data["networks_list"] = _objects(hv["networks"], "network", notes)
        if hv.get("pools") is not None:
            data["storage_pools"] = _objects(hv["pools"], "pool", notes)
        data["guests_list"] = entries
        files.append({"path": os.path.join("host_vars", hv["name"] + ".yml"), "hypervisor": hv["name"],
                      "text": render(hv["name"], hv.get("uri"), data, notes, dump), "guests": len(entries),
                      "notes": notes})
    return files


def _inside(dest, path):
    real_dest = os.path.realpath(dest)
    return os.path.realpath(path).startswith(real_dest + os.sep)


def write_files(dest, files, force, check):
    """Write each planned file under ``dest`` (unless ``check``): its state (created, changed, unchanged) and its
    diff. Refuses before writing anything: a target directory that is not one, a path that leaves it or is a
    symbolic link, a file the export did not write (without ``force``)."""
    if not os.path.isabs(dest) or not os.path.isdir(dest):
        raise SpecError("dest", dest, "expected the absolute path of an existing directory (the inventory's)")
    planned = []
    for item in files:
        path = os.path.join(dest, item["path"])
        if os.path.islink(path) or os.path.islink(os.path.dirname(path)):
            raise UserError("%s is a symbolic link; the export writes only plain files inside %s. Nothing was written"
                            % (path, dest), code="refused")
        if not _inside(dest, path):
            raise UserError("%s is outside %s. Nothing was written" % (path, dest), code="refused")
        before = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                before = handle.read()
            if not force and not any(line.startswith(MARK) for line in before.split("\n")[:3]):
                raise UserError("%s was not written by the export (its first lines do not say so), and would be "
                                "overwritten. Nothing was written. Move it away, or set force: true" % path,
                                code="refused", result={"path": path})
        state = "created" if before is None else ("unchanged" if before == item["text"] else "changed")
        planned.append((item, path, before, state))
    results = []
    for item, path, before, state in planned:
        if state != "unchanged" and not check:
            replace_file(path, item["text"], 0o644, prefix=".export-")
        results.append({"path": path, "hypervisor": item["hypervisor"], "state": state, "guests": item["guests"],
                        "notes": item["notes"],
                        "diff": {"before": before or "", "after": item["text"], "before_header": path,
                                 "after_header": path}})
    return results
