# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: moving one guest from the source connection to ``destination_uri`` (``migrate_guest``).

Idempotent: a guest already on the destination and absent from the source is no change. Pre-flight first
(preflight.py): nothing moves while a problem is found. A running guest migrates live (peer to peer by
default), a shut-off one offline (its definition). The migration runs in a thread while this one watches
its progress and applies the timeout (abort, or switch to post-copy). Afterwards exactly one running copy
must exist; a failed migration leaves the guest on the source and no copy defined on the destination.
"""

from __future__ import annotations

import datetime
import threading
import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    RUNNING_STATES,
    libvirt,
    lookup_domain,
    open_connection,
    state_of,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.arch import parse_guest_arches
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import origin_after, read_origin, with_origin
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.preflight import guest_needs, preflight
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError, problem_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string


def host_facts(conn, needs):
    """What preflight needs to know about a host, for one guest's needs."""
    caps = parse_xml(conn.getCapabilities())
    facts = {"uuid": caps.findtext("host/uuid"), "name": conn.getHostname(), "networks": {}, "pools": {},
             "paths": {}, "free_mib": conn.getFreeMemory() // (1024 * 1024), "cpu_compatible": None,
             "architectures": {arch: entry["domain_types"] for arch, entry in parse_guest_arches(caps).items()}}
    for net in conn.listAllNetworks(0):
        facts["networks"][net.name()] = bool(net.isActive())
    paths = [d["path"] for d in needs["disks"] if d["path"] and not d["pool"]]
    for pool in conn.listAllStoragePools(0):
        facts["pools"][pool.name()] = bool(pool.isActive())
        if pool.isActive() and _holds(pool, needs["disks"], paths):
            pool.refresh(0)  # on shared storage another host may have made the volume since libvirt last looked
    for disk in needs["disks"]:
        key = disk["path"] or "%s/%s" % (disk["pool"], disk["volume"])
        try:
            if disk["pool"]:
                conn.storagePoolLookupByName(disk["pool"]).storageVolLookupByName(disk["volume"])
            else:
                conn.storageVolLookupByPath(disk["path"])
            facts["paths"][key] = True
        except libvirt.libvirtError:
            facts["paths"][key] = False
    return facts


def _holds(pool, disks, paths):
    """Whether a pool holds (or would hold) one of the guest's disks: by name, or by a path under its target."""
    if any(d["pool"] == pool.name() for d in disks):
        return True
    target = parse_xml(pool.XMLDesc(0)).findtext("target/path")
    return bool(target) and any(path.startswith(target.rstrip("/") + "/") for path in paths)


def _cpu_compatible(dest, domain_xml, needs):
    if not needs["has_cpu_model"] or needs["cpu_mode"] == "host-passthrough":
        return None
    root = parse_xml(domain_xml)
    os_type = root.find("os/type")
    try:  # against what the destination's hypervisor offers for this guest's kind (kvm or qemu), arch and machine
        result = dest.compareHypervisorCPU(root.findtext("devices/emulator"),
                                           None if os_type is None else os_type.get("arch"),
                                           None if os_type is None else os_type.get("machine"),
                                           root.get("type"), to_string(root.find("cpu")), 0)
    except libvirt.libvirtError:
        return None
    return result != libvirt.VIR_CPU_COMPARE_INCOMPATIBLE


def _flags_and_params(params, running):
    flags = 0
    if params["persistent"]:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST
    if params["undefine_source"]:
        flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    migration = {}
    if not running:
        return flags | libvirt.VIR_MIGRATE_OFFLINE | libvirt.VIR_MIGRATE_PERSIST_DEST, migration
    flags |= libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    if params["peer2peer"]:
        flags |= libvirt.VIR_MIGRATE_PEER2PEER
    if params["copy_storage"] == "all":
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    elif params["copy_storage"] == "incremental":
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_INC
    for option, flag in (("auto_converge", libvirt.VIR_MIGRATE_AUTO_CONVERGE), ("postcopy", libvirt.VIR_MIGRATE_POSTCOPY),
                         ("compressed", libvirt.VIR_MIGRATE_COMPRESSED), ("unsafe", libvirt.VIR_MIGRATE_UNSAFE),
                         ("tls", libvirt.VIR_MIGRATE_TLS)):
        if params.get(option):
            flags |= flag
    if params.get("bandwidth"):
        migration[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(params["bandwidth"])
    if params.get("migrate_uri"):
        migration[libvirt.VIR_MIGRATE_PARAM_URI] = params["migrate_uri"]
    return flags, migration


def _progress(stats):
    if not stats:
        return None
    return {
        "data_total_bytes": stats.get("data_total"),
        "data_processed_bytes": stats.get("data_processed"),
        "data_remaining_bytes": stats.get("data_remaining"),
        "memory_total_bytes": stats.get("memory_total"),
        "downtime_ms": stats.get("downtime"),
        "time_elapsed_ms": stats.get("time_elapsed"),
    }


def check_params(params):
    if params["destination_uri"] == params["uri"]:
        raise SpecError("destination_uri", params["destination_uri"], "the same URI as uri: give the other hypervisor")
    if params.get("timeout_action") == "postcopy" and not params.get("postcopy"):
        raise SpecError("timeout_action", "postcopy", "needs postcopy: true (the migration must allow post-copy)")
    for option in ("bandwidth", "timeout", "max_downtime"):
        if params.get(option) is not None and params[option] < 1:
            raise SpecError(option, params[option], "expected a positive integer")


def preflight_failure(name, destination, where, problems, warnings=()):
    """The failure of a pre-flight that found ``problems``: ``code: preflight`` and ``stage: preflight``, the
    problems' sentences and their kinds (same order). ``destination``: (name, URI); ``where``: (the guest's state,
    the source's name)."""
    return UserError("guest %s cannot move to %s (%s); it stays %s on %s:\n%s" % (
        (name,) + tuple(destination) + tuple(where) + ("\n".join("- " + p["message"] for p in problems),)),
        code="preflight", result=dict(problem_fields(problems), stage="preflight", warnings=list(warnings)))


class MigrateRunner(Runner):
    """The migrate module's run: the result dict. SpecError before anything moves for bad input; UserError with
    ``reason: preflight`` (``stage: preflight``, ``problems``, ``problem_kinds``) when the pre-flight finds
    problems, and ``reason: migration_failed`` (``stage: migration``) after a failed migration, the guest left
    running on the source. ``open_dest`` opens the destination (tests give the test driver's)."""

    open_dest = staticmethod(open_connection)

    def run(self):
        check_params(self.params)
        dest = self.open_dest(self.params["destination_uri"], timeout=self.params.get("connect_timeout"))
        try:
            return self.finish(_migrate(self.conn, dest, self.params, self.check, self))
        finally:
            dest.close()


def _migrate(src, dest, params, check, runner):
    name = params["name"]
    source_facts = {"uuid": parse_xml(src.getCapabilities()).findtext("host/uuid"), "name": src.getHostname()}
    dest_uuid = parse_xml(dest.getCapabilities()).findtext("host/uuid")
    if source_facts["uuid"] and source_facts["uuid"] == dest_uuid:
        raise SpecError("destination_uri", params["destination_uri"],
                        "the destination is the source: both report host UUID %s (give each hypervisor its own "
                        "host_uuid); guest %s stays where it is" % (dest_uuid, name))
    src_dom, dest_dom = lookup_domain(src, name), lookup_domain(dest, name)
    result = {"changed": False, "name": name, "actions": runner.actions, "preflight": []}
    if src_dom is None:
        if dest_dom is None:
            raise SpecError("name", name, "no guest of that name on %s or on %s" % (src.getURI(), params["destination_uri"]))
        result.update(source_state="absent", destination_state=state_of(dest_dom))
        return result  # already moved
    running = state_of(src_dom) in RUNNING_STATES
    if dest_dom is not None:
        if not _stale_on_destination(src_dom, dest_dom, running, (dest_uuid, params["destination_uri"])):
            raise UserError("guest %s exists on both %s (%s) and %s (%s); refusing to migrate over a copy. Remove the "
                            "one that is stale first" % (name, src.getURI(), state_of(src_dom), params["destination_uri"],
                                                         state_of(dest_dom)))
        runner.warn("guest %s: the destination's shut-off definition of it (left there when the guest was recovered "
                    "elsewhere) is replaced by the running guest's" % name)
        if dest_dom.UUIDString() != src_dom.UUIDString():
            # libvirt takes an incoming guest over an inactive definition of its UUID only: this one goes first
            runner.actions.append("undefine the stale copy on the destination (its disks and UEFI variables kept)")
    domain_xml = src_dom.XMLDesc(0 if running else libvirt.VIR_DOMAIN_XML_INACTIVE)
    needs = guest_needs(domain_xml)
    dest_facts = host_facts(dest, needs)
    dest_facts["cpu_compatible"] = _cpu_compatible(dest, domain_xml, needs) if running else None
    if not running and not src_dom.isPersistent():
        raise UserError("guest %s is transient and not running: there is nothing to move" % name)
    problems, warnings = preflight(needs, running, source_facts, dest_facts, params)
    for warning in warnings:
        runner.warn(warning)
    if problems:
        raise preflight_failure(name, (dest_facts["name"], params["destination_uri"]),
                                (state_of(src_dom), source_facts["name"]), problems, runner.warnings)
    result["preflight"] = ["ok: networks %s, %d disk(s), %d MiB free for %d MiB" % (
        ", ".join(needs["networks"]) or "none", len(needs["disks"]), dest_facts["free_mib"], needs["memory_mib"])]
    what = "%s migration of %s from %s to %s%s" % (
        "live" if running else "offline", name, source_facts["name"], dest_facts["name"],
        " copying storage (%s)" % params["copy_storage"] if params["copy_storage"] and running else "")
    result["actions"].append(what)
    result["changed"] = True
    origin_before = read_origin(parse_xml(domain_xml))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    origin = origin_after(origin_before, params.get("record_origin"), {
        "uuid": source_facts["uuid"], "uri": params["uri"], "host": source_facts["name"],
        "since": now, "by": params.get("moved_by") or "migrate"}, dest_uuid, params["destination_uri"])
    last_move = {"at": now, "by": params.get("moved_by") or "migrate", "from": source_facts["name"]}
    result["origin"] = origin
    if origin != origin_before:
        result["actions"].append("origin recorded: %s" % origin["host"] if origin else "origin cleared: the guest is home")
    if check:
        result.update(source_state=state_of(src_dom), destination_state="absent")
        return result
    if dest_dom is not None and dest_dom.UUIDString() != src_dom.UUIDString():
        dest_dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
    flags, migration = _flags_and_params(params, running)
    # the records (its origin, this move) travel in the definitions the destination gets: no moment with the guest
    # there and no record
    secure = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
    persist = with_origin(src_dom.XMLDesc(secure | libvirt.VIR_DOMAIN_XML_INACTIVE), origin, last_move)
    if flags & libvirt.VIR_MIGRATE_PERSIST_DEST:
        migration[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = persist
    migration[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = with_origin(src_dom.XMLDesc(secure), origin, last_move) if running \
        else persist
    if params.get("max_downtime") and running:
        src_dom.migrateSetMaxDowntime(int(params["max_downtime"]), 0)
    outcome = {}

    def migrate():
        try:
            if running and params["peer2peer"]:
                src_dom.migrateToURI3(params["destination_uri"], migration, flags)
            else:
                src_dom.migrate3(dest, migration, flags)
        except libvirt.libvirtError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=migrate, daemon=True)
    started = time.monotonic()
    worker.start()
    switched = aborted = False
    while worker.is_alive():
        worker.join(0.5)
        if not worker.is_alive() or not running or not params.get("timeout"):
            continue
        if time.monotonic() - started > params["timeout"] and not (switched or aborted):
            try:
                if params.get("timeout_action") == "postcopy":
                    src_dom.migrateStartPostCopy(0)
                    switched = True
                    result["actions"].append("switched to post-copy after %d s" % params["timeout"])
                else:
                    src_dom.abortJob()
                    aborted = True
            except libvirt.libvirtError as exc:
                runner.warn("could not act on the timeout: %s" % exc)
    moved = lookup_domain(dest, name)
    if "error" in outcome or aborted:
        _leave_on_source(src, dest, name, moved)
        reason = "aborted after the timeout of %d s" % params["timeout"] if aborted else str(outcome["error"])
        raise UserError("migrating guest %s to %s failed: %s. It stays %s on %s; no copy is defined on the "
                        "destination" % (name, params["destination_uri"], reason, state_of(lookup_domain(src, name)),
                                         source_facts["name"]),
                        code="migration_failed", cause=outcome.get("error"),
                        result={"stage": "migration", "aborted": aborted, "warnings": runner.warnings})
    try:
        stats = moved.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED) if running and moved is not None else None
    except libvirt.libvirtError:
        stats = None
    result["progress"] = _progress(stats)
    left = lookup_domain(src, name)
    copies = [uri for uri, dom in ((src.getURI(), left), (params["destination_uri"], moved))
              if dom is not None and dom.isActive()]
    if running and copies != [params["destination_uri"]]:
        raise UserError("after migrating guest %s, the running copies are on %s (expected exactly one, on %s)"
                        % (name, ", ".join(copies) or "no host", params["destination_uri"]), code="migration_failed",
                        result={"stage": "migration", "running_on": copies})
    result.update(source_state=state_of(left), destination_state=state_of(moved))
    return result


def _stale_on_destination(src_dom, dest_dom, running, destination):
    """Whether the destination's definition is a stale copy of the guest that runs on the source: shut off,
    persistent, and the same guest - the same UUID, or the running copy records that it was recovered from the
    destination (``destination``: its host UUID and URI; a recovered guest is defined anew, with a UUID of its own
    unless its description declares one). A live migration replaces it (libvirt takes an incoming guest over an
    inactive definition); any other second copy is refused."""
    if not running or dest_dom.isActive() or not dest_dom.isPersistent():
        return False
    if dest_dom.UUIDString() == src_dom.UUIDString():
        return True
    origin = read_origin(parse_xml(src_dom.XMLDesc(0))) or {}
    host_uuid, uri = destination
    left_it = (origin.get("uuid") and origin["uuid"] == host_uuid) or (not origin.get("uuid") and origin.get("uri") == uri)
    return bool(origin.get("recovered") and left_it)


def _leave_on_source(src, dest, name, moved):
    """After a failed migration: no copy defined on the destination that is not running there (libvirt
    resumes the source on failure)."""
    if moved is None:
        return
    try:
        source = lookup_domain(src, name)
        if source is not None and source.isActive() and not moved.isActive() and moved.isPersistent():
            moved.undefine()
    except libvirt.libvirtError:
        pass
