# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one place that opens libvirt connections and turns libvirt errors into messages.

Everything takes a connection object (``open_connection``); a module's run opens and closes it
(_runner.run_guarded). Every definition the collection writes goes through ``define`` (validated here,
and by the daemon); a guest's state has one table, ``DOMAIN_STATES``.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from contextlib import contextmanager

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _transport
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import validate_schema

LIBVIRT_IMPORT_ERROR = None
try:
    import libvirt
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

DEFAULT_URI = "qemu:///system"
DEFAULT_CONNECT_TIMEOUT = _transport.DEFAULT_CONNECT_TIMEOUT


class LibvirtConnectionError(UserError):
    """The daemon at a URI cannot be reached or refused us: ``uri``, and libvirt's own words in ``cause``."""

    code = "unreachable"

    def __init__(self, uri, cause, why=None):
        self.uri = uri
        super().__init__(connection_error_message(uri, cause, why), result={"uri": uri, "reason": why}, cause=cause)


def _silence_libvirt_stderr():
    # libvirt's default error handler prints every error to stderr as well as raising it;
    # that would land in Ansible's module output next to our own, clearer message.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def connection_error_message(uri, error, why=None):
    """The message shown when ``uri`` cannot be opened: what failed, and why (``why``, found by _transport.diagnose)
    or what to check."""
    if why:
        said = str(error).strip().rstrip(".")
        return "Cannot connect to libvirt at uri '%s': %s. Why: %s." % (uri, said, why.rstrip("."))
    return (
        "Cannot connect to libvirt at uri '%s': %s. Check that the libvirt daemon "
        "(libvirtd, or virtqemud with modular daemons) is running on the managed host, that the "
        "uri is right, and that the user running the task may use it (root, or a member of the "
        "libvirt group for qemu:///system)." % (uri, str(error).strip().rstrip("."))
    )


def open_connection(uri=DEFAULT_URI, readonly=False, timeout=None):
    """Open and return a libvirt connection (read-only with ``readonly``: what the _info modules, the cluster view
    and the inventory plugin read through) within ``timeout`` seconds (DEFAULT_CONNECT_TIMEOUT when None); raise
    LibvirtConnectionError with the reason (_transport.diagnose: the port that refused or did not answer, the TLS file
    missing, the certificate's names). A remote connection sends keepalives: a peer that vanishes during a long wait
    fails the next call within seconds instead of waiting out TCP's retries."""
    if libvirt is None:
        raise UserError(missing_required_lib("libvirt-python"), code="missing_library")
    _silence_libvirt_stderr()
    timeout = DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout
    transport = _transport.Transport(uri)
    if transport.remote:
        _start_event_loop()
    try:
        conn = _bounded(lambda: _open(_transport.for_libvirt(uri), readonly), max(1.0, timeout - PROBE_TIME))
    except _Timeout:
        _end_stuck_transport()
        why = _transport.diagnose(uri, "", PROBE_TIME) or "the host answered but the connection did not come up (a " \
            "handshake that stalls, an ssh that waits)"
        raise LibvirtConnectionError(uri, "no connection within connect_timeout=%ss" % timeout, why) from None
    except libvirt.libvirtError as exc:
        raise LibvirtConnectionError(uri, exc, _transport.diagnose(uri, exc, PROBE_TIME)) from exc
    if conn is None:  # very old bindings returned None instead of raising
        raise LibvirtConnectionError(uri, "no connection returned")
    if transport.remote and _EVENT_LOOP:
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass  # a daemon without keepalive: TCP's own timeouts apply
    return conn


# No credential may be asked for: a connection never prompts (libvirt's default callback would read a password or a
# host key's acceptance from the module's stdin). An ssh transport's own prompts are off through no_tty (_transport).
NO_PROMPT_AUTH = [[], None, None]


def _open(uri, readonly):
    """The one libvirt open: read-write like virConnectOpen, or read-only (VIR_CONNECT_RO: the daemon refuses every
    change, and a user who may only read is let in, e.g. on libvirt's read-only socket), with the same non-prompting
    authentication over every transport."""
    if readonly:
        return libvirt.openAuth(uri, NO_PROMPT_AUTH, libvirt.VIR_CONNECT_RO)
    return libvirt.open(uri)


@contextmanager
def writable_on_demand(uri, timeout=None):
    """For a reader on a read-only connection that needs, for a few reads, a read-write one (a guest's secure XML,
    its guest agent): yields ``writable()``, which opens it on the first call (later calls return the same one), or
    returns None where it cannot be opened (a user who may only read); closed at the end."""
    opened = []

    def writable():
        if not opened:
            try:
                opened.append(open_connection(uri, timeout=timeout))
            except UserError:
                opened.append(None)
        return opened[0]
    try:
        yield writable
    finally:
        if opened and opened[0] is not None:
            opened[0].close()


class _Timeout(Exception):
    pass


def _bounded(call, timeout):
    """``call()`` in a thread, waited for at most ``timeout`` seconds (raises _Timeout; the thread, stuck in a connect,
    is left to the process's exit)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # pylint: disable=broad-except  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="kvmfleet-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Timeout()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _end_stuck_transport():
    """An ssh that libvirt started for a connection given up on: ended with it, not left to its own timeout."""
    me = str(os.getpid())
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/comm" % pid) as handle:
                name = handle.read().strip()
        except OSError:
            continue
        if fields[1] == me and name == "ssh":
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass


PROBE_TIME = 3  # of connect_timeout, kept for finding out why a connection did not come up
KEEPALIVE_INTERVAL = 5  # seconds between keepalive probes on an idle remote connection
KEEPALIVE_COUNT = 3  # probes without an answer before libvirt closes the connection
_EVENT_LOOP = []


def _start_event_loop():
    """libvirt's keepalives need an event loop: the default one, run in a daemon thread, once per process."""
    if _EVENT_LOOP:
        return
    try:
        libvirt.virEventRegisterDefaultImpl()
    except libvirt.libvirtError:
        return

    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, name="kvmfleet-libvirt-events", daemon=True).start()
    _EVENT_LOOP.append(True)


class Undo:
    """What a multi-step change has made so far, so that a failure part way takes it back: the one
    rollback of the collection.

    Each write that makes or overwrites something registers how to take it back (delete the volume
    it created, put back the file it replaced, undefine the guest it defined); ``rollback`` runs
    them newest first and returns what could not be taken back (for the error message). ``guard``
    wraps the writes of one change.
    """

    def __init__(self):
        self._steps = []

    def add(self, what, take_back):
        self._steps.append((what, take_back))

    def __len__(self):
        return len(self._steps)

    def rollback(self):
        failed = []
        for what, take_back in reversed(self._steps):
            try:
                take_back()
            except Exception as exc:  # pylint: disable=broad-except  # report, keep taking the rest back
                failed.append("%s (%s)" % (what, exc))
        self._steps = []
        return failed

    def describe_failure(self, failed):
        """The sentence an error message ends with: what was taken back, and what could not be."""
        if not failed:
            return "everything this task had made was taken back"
        return "some of what this task made could not be taken back: %s" % "; ".join(failed)

    @contextmanager
    def guard(self, failed_what, code="rolled_back"):
        """The writes of one change. A libvirt or OS error takes back everything registered and raises
        UserError('<failed_what> failed: <error>; <what was taken back>') with ``code``; any other
        failure (a refusal, an interrupt) takes it back too and goes on as it is."""
        try:
            yield self
        except (libvirt.libvirtError, OSError) as exc:
            failed = self.rollback()
            raise UserError("%s failed: %s; %s" % (failed_what, exc, self.describe_failure(failed)), code=code,
                            cause=exc) from None
        except BaseException:
            self.rollback()
            raise


def converge_autostart(obj, wanted, check, exists=True):
    """Set autostart of a guest, network or pool to ``wanted`` (None: leave it); returns the action taken
    ('autostart on'/'autostart off') or None. ``exists`` is false for an object check mode only predicts."""
    if wanted is None:
        return None
    current = bool(obj.autostart()) if exists and obj is not None and obj.isPersistent() else False
    if current == wanted:
        return None
    if not check:
        obj.setAutostart(1 if wanted else 0)
    return "autostart on" if wanted else "autostart off"


def start(obj, call):
    """Start a guest, network or pool with ``call`` (its create). Returns False when another writer started it between
    this run's plan and the call (libvirt: 'already active/running'): the state asked for holds, and it is not this
    run's to take back. Any other failure is raised."""
    try:
        call()
    except libvirt.libvirtError as exc:
        if libvirt_error_code(exc) != libvirt.VIR_ERR_OPERATION_INVALID or not obj.isActive():
            raise
        return False
    return True


def xml_with(obj, wanted, fallback=()):
    """An object's XML with the flags ``wanted`` (names of libvirt constants: its persistent definition, with its
    secrets), or with those of ``fallback`` where the driver or the connection refuses them (the test driver has no
    persistent-definition flag for networks; a read-only connection may not read secrets)."""
    def flags(names):
        value = 0
        for name in names:
            value |= getattr(libvirt, name)
        return value
    try:
        return obj.XMLDesc(flags(wanted))
    except libvirt.libvirtError:
        return obj.XMLDesc(flags(fallback))


def lookup_or_none(lookup, name, missing_code):
    """``lookup(name)`` (conn.lookupByName, conn.networkLookupByName, ...), or None when libvirt says
    the object does not exist (``missing_code``, e.g. 'VIR_ERR_NO_NETWORK'); other errors propagate."""
    try:
        return lookup(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == getattr(libvirt, missing_code):
            return None
        raise


# virDomainState, once: libvirt's name for each state (as `virsh domstate` says it, with underscores), and the
# power state the modules converge and report: blocked and shutting down still run, a crashed guest is off, a
# suspended one (pmsuspended) is paused.
DOMAIN_STATES = {
    0: ("nostate", "shutoff"),
    1: ("running", "running"),
    2: ("blocked", "running"),
    3: ("paused", "paused"),
    4: ("shutdown", "running"),
    5: ("shutoff", "shutoff"),
    6: ("crashed", "shutoff"),
    7: ("pmsuspended", "paused"),
}
RUNNING_STATES = ("running", "paused")  # power states with a QEMU process


def power_state(number):
    """'running', 'paused' or 'shutoff' for a virDomainState number."""
    return DOMAIN_STATES.get(number, ("unknown", "shutoff"))[1]


def libvirt_state_name(number):
    """libvirt's own name for a virDomainState number ('blocked', 'crashed', ...), or 'unknown'."""
    return DOMAIN_STATES.get(number, ("unknown", None))[0]


def each_domain(conn, flags, read):
    """``read(dom)`` for every guest listed with ``flags``, skipping a guest that vanishes between the listing and the
    read (another run undefined it meanwhile: guests come and go while a run reads them)."""
    results = []
    for dom in conn.listAllDomains(flags):
        try:
            results.append(read(dom))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
    return results


def lookup_domain(conn, name):
    """The guest ``name`` on ``conn``, or None."""
    return lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")


def state_of(dom):
    """'running', 'paused', 'shutoff', or 'absent' for None."""
    return "absent" if dom is None else power_state(dom.state(0)[0])


# What a driver says when it cannot do a call at all (the test driver has no node memory stats, another no job info):
# a fact it cannot give is unknown (None), not a failure of the read.
UNSUPPORTED = ("VIR_ERR_NO_SUPPORT", "VIR_ERR_OPERATION_UNSUPPORTED", "VIR_ERR_ARGUMENT_UNSUPPORTED")


def unsupported(exc):
    """Whether a libvirtError says the driver (or the daemon) does not support the call."""
    return libvirt_error_code(exc) in {getattr(libvirt, name, None) for name in UNSUPPORTED} - {None}


def if_supported(call, *args, default=None):
    """``call(*args)``, or ``default`` (None: unknown) where the driver does not support it; other errors propagate."""
    try:
        return call(*args)
    except libvirt.libvirtError as exc:
        if not unsupported(exc):
            raise
        return default


def libvirt_error_code(exc):
    """The VIR_ERR_* code of a libvirtError, or None for other exceptions."""
    get = getattr(exc, "get_error_code", None)
    return get() if get else None


def version_string(number):
    """libvirt's packed version number (major * 1e6 + minor * 1e3 + micro) as 'major.minor.micro'."""
    number = int(number)
    return "%d.%d.%d" % (number // 1000000, (number // 1000) % 1000, number % 1000)


# ---- writing definitions: the one place, validated twice --------------------------------------------------

# What each kind of document is checked against (libvirt's RelaxNG schema, here) and the flag that has the
# daemon check it again against its own schema (also on a remote host, and where the schemas are not
# installed here). Older daemons that do not know the flag get the call without it.
DEFINE_KINDS = {
    "domain": ("domain.rng", "VIR_DOMAIN_DEFINE_VALIDATE"),
    "network": ("network.rng", "VIR_NETWORK_DEFINE_VALIDATE"),
    "pool": ("storagepool.rng", "VIR_STORAGE_POOL_DEFINE_VALIDATE"),
    "volume": ("storagevol.rng", "VIR_STORAGE_VOL_CREATE_VALIDATE"),
    "snapshot": ("domainsnapshot.rng", "VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE"),
}


_CHECKED = {}  # the last document of each kind that validated: a runner checks it early, define need not again


def check_document(kind, xml):
    """Validate a document of ``kind`` (a DEFINE_KINDS key) against libvirt's schema before
    anything is written (in check mode too); SchemaError naming the kind otherwise."""
    if _CHECKED.get(kind) == xml:
        return
    schema, _flag = DEFINE_KINDS[kind]
    validate_schema(xml, schema, kind)
    _CHECKED[kind] = xml


def define(kind, call, xml, flags=0, validate=True):
    """Write a document: ``call(xml, flags)`` is the libvirt call (conn.defineXMLFlags, conn.networkDefineXMLFlags,
    conn.storagePoolDefineXML, pool.createXML, a createXMLFrom bound to its source volume, dom.snapshotCreateXML).
    The document is validated here first, and the daemon validates it again (its VALIDATE flag). Returns what
    libvirt returned (the new object). ``validate=False`` (a definition that already failed the schema, which the
    change makes no worse: _domain/schema.py) writes it as libvirt took it before, without either check."""
    try:
        if not validate:
            return call(xml, flags)
        check_document(kind, xml)
        flag = getattr(libvirt, DEFINE_KINDS[kind][1], 0)
        try:
            return call(xml, flags | flag)
        except libvirt.libvirtError as exc:
            if not flag or libvirt_error_code(exc) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                raise
        return call(xml, flags)  # a daemon older than the flag (libvirt < 7.8); the schema was checked here
    except libvirt.libvirtError as exc:
        if not _made_meanwhile(exc):
            raise
        raise UserError("%s %s was created by another writer during this run (it was not there when this run "
                        "planned), so nothing this run made for it was kept. Run again: the next run finds it and "
                        "converges from there (libvirt: %s)" % (kind, _name_of(xml), exc), code="conflict",
                        cause=exc) from None


def _made_meanwhile(exc):
    """A create refused because the object is there now: another writer made it since the plan."""
    code = libvirt_error_code(exc)
    return code == getattr(libvirt, "VIR_ERR_STORAGE_VOL_EXIST", -1) or (
        code == libvirt.VIR_ERR_OPERATION_FAILED and "already exists" in str(exc))


def _name_of(xml):
    start = xml.find("<name>")
    return xml[start + 6:xml.find("</name>", start)] if start >= 0 else "(unnamed)"
