"""Adopting what other tools made, exactly (issue 21): a corpus of definitions made by virt-install, virt-manager's
defaults, libvirt itself and by hand (corpus.py) is defined on the real daemon, read back with domain_info, and the
read-back spec converged with the domain module: check mode, the real run, a second run, check mode again. Each
guest must come out adopted - its marker added, nothing else - and its definition outside the collection's
metadata byte for byte what libvirt kept before (``virsh dumpxml --inactive``)."""

from __future__ import annotations

import json

import libvirt
import pytest
from lxml import etree

import corpus
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import Toggle
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string

pytestmark = pytest.mark.slow
MARKER = ["metadata.managed: (none) -> True"]
FLEET = "the corpus, with the fleet module"


def outside_ours(xml):
    root = parse_xml(xml)
    GUEST.write(root, None)
    return to_string(root)


def kept_classes(xml):
    """The elements of a definition the friendly spec does not express (kept as they are on the host; a guest made
    anew from its read-back would not have them), as classes: '<controller type=usb>', '<qemu:commandline>'."""
    root = parse_xml(xml)
    where = root.getroottree().getpath
    paths = [f.path for f in DOMAIN_FIELDS if f.path and not isinstance(f, Toggle)]
    toggled = {where(node) for f in DOMAIN_FIELDS if isinstance(f, Toggle) for node in root.xpath(f.xpath)}
    devices = root.find("devices")
    selected = {where(e) for kind in DEVICE_KINDS for e in (kind.select(devices) if devices is not None else ())}
    classes = set()
    for child in root.iterchildren("*"):
        tag = etree.QName(child).localname if "}" in child.tag else child.tag
        if child.tag in ("name", "uuid", "metadata", "devices"):
            continue
        if not any(p == tag or p.startswith(tag + "/") for p in paths) and \
                not any(t == where(child) or t.startswith(where(child) + "/") for t in toggled):
            classes.add("<qemu:%s>" % tag if "}" in child.tag else "<%s>" % tag)
    for dev in devices.iterchildren("*") if devices is not None else ():
        path = "devices/" + dev.tag
        if where(dev) in selected or where(dev) in toggled or any(p == path or p.startswith(path + "/") for p in paths):
            continue
        classes.add("<%s%s>" % (dev.tag, " type=%s" % dev.get("type") if dev.get("type") else ""))
    return classes


def results(run, names, domain_tasks):
    """{guest name: its result}: the fleet task's entry for each guest, or the domain task's result for a guest the
    domain module converged."""
    found = {}
    for task in run.tasks:
        if task["task"] == FLEET:
            for entry in task["result"].get("guests") or []:
                found[entry["name"]] = dict(entry, failed=bool(entry.get("error")), msg=entry.get("error"))
        elif task["task"] in domain_tasks:
            found[domain_tasks[task["task"]]] = task["result"]
    return {name: found.get(name, {"failed": True, "msg": "no result"}) for name in names}


def test_every_definable_guest_of_the_corpus_is_adopted_exactly(conn, prefix, ansible, lab, tmp_path):
    entries = corpus.build(conn, prefix, lab["pool_dir"], lab["network"])
    defined, refused = corpus.define_all(conn, entries)
    info = ansible.run([{"name": "read", "kvmfleet.libvirt.domain_info": {}, "register": "read"}])
    specs = {g["name"]: g["spec"] for g in info.result("read")["guests"] if g["name"].startswith(prefix)}
    for spec in specs.values():
        spec.pop("managed", None)
    # The domain module converges every sixth guest, one task each; the fleet module (the same engine, one task)
    # the others: four runs of 60 domain tasks would take minutes.
    labels = sorted(defined)
    domain_tasks = {label: defined[label][0] for n, label in enumerate(labels) if n % 6 == 0}
    tasks = [{"name": label, "kvmfleet.libvirt.domain": specs[name], "ignore_errors": True}
             for label, name in sorted(domain_tasks.items())]
    tasks.append({"name": FLEET, "ignore_errors": True, "kvmfleet.libvirt.fleet": {"guests": [
        specs[defined[label][0]] for label in labels if label not in domain_tasks]}})
    names = [defined[label][0] for label in labels]
    checked = results(ansible.run(tasks, check=True), names, domain_tasks)
    first = results(ansible.run(tasks), names, domain_tasks)
    second = results(ansible.run(tasks), names, domain_tasks)
    after = results(ansible.run(tasks, check=True), names, domain_tasks)

    exact, inexact = [], {}
    for label, (name, before) in sorted(defined.items()):
        now = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        steps = [("check mode", checked[name]), ("the run", first[name]), ("the second run", second[name]),
                 ("check mode after", after[name])]
        why = next(("%s failed: %s" % (what, r.get("msg")) for what, r in steps if r.get("failed")), None)
        if why is None and not (checked[name]["changed"] and checked[name]["adopted"]):
            why = "check mode did not predict the adoption: %s" % checked[name].get("changes")
        if why is None and (first[name].get("changes") != MARKER or not first[name]["adopted"]):
            why = "the run changed more than the marker: %s %s" % (
                first[name].get("changes"), first[name].get("actions"))
        if why is None and (second[name]["changed"] or after[name]["changed"]):
            why = "not idempotent: %s" % (second[name].get("changes") or after[name].get("changes"))
        if why is None and GUEST.find(now) is None:
            why = "no marker after the run"
        if why is None and outside_ours(now) != outside_ours(before):
            why = "the definition changed outside the collection's metadata"
        if why is None:
            exact.append(label)
        else:
            inexact[label] = why
    kept = {}
    for label, (_name, before) in defined.items():
        for cls in kept_classes(before):
            kept.setdefault(cls, []).append(label)
    report = {"corpus": len(entries), "definable": len(defined), "exact": len(exact), "refused": refused,
              "inexact": inexact, "by the domain module": sorted(domain_tasks),
              "kept, not expressed by the spec": {cls: len(labels) for cls, labels in sorted(kept.items())}}
    (tmp_path / "corpus-report.json").write_text(json.dumps(report, indent=2))
    print("adoption corpus: %d definitions, %d definable, %d adopted exactly" % (len(entries), len(defined), len(exact)))
    for label, why in sorted(refused.items()):
        print("  not definable: %s: %s" % (label, why))
    print("  kept as they are, not in the read-back (guests): %s" % ", ".join(
        "%s %d" % (cls, len(labels)) for cls, labels in sorted(kept.items(), key=lambda item: -len(item[1]))))
    for label, why in sorted(inexact.items()):
        print("  NOT EXACT: %s: %s" % (label, why))
    assert len(entries) >= 60 and len(defined) >= 55, report
    assert inexact == {}, json.dumps(inexact, indent=2)
