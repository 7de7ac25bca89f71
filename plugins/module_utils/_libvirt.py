# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one place that opens libvirt connections and turns libvirt errors into messages.

Modules call :func:`connect` with their AnsibleModule; everything else takes a connection object.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import LXML_IMPORT_ERROR, etree

LIBVIRT_IMPORT_ERROR = None
try:
    import libvirt
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

DEFAULT_URI = "qemu:///system"


class LibvirtConnectionError(UserError):
    """The daemon at a URI cannot be reached or refused us."""


def _silence_libvirt_stderr():
    # libvirt's default error handler prints every error to stderr as well as raising it;
    # that would land in Ansible's module output next to our own, clearer message.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def connection_error_message(uri, error):
    """The message shown when ``uri`` cannot be opened: what failed and what to check."""
    return (
        "Cannot connect to libvirt at uri '%s': %s. Check that the libvirt daemon "
        "(libvirtd, or virtqemud with modular daemons) is running on the managed host, that the "
        "uri is right, and that the user running the task may use it (root, or a member of the "
        "libvirt group for qemu:///system)." % (uri, str(error).strip().rstrip("."))
    )


def open_connection(uri=DEFAULT_URI, readonly=False):
    """Open and return a libvirt connection; raise LibvirtConnectionError with a helpful message."""
    _silence_libvirt_stderr()
    try:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtConnectionError(connection_error_message(uri, exc)) from exc
    if conn is None:  # very old bindings returned None instead of raising
        raise LibvirtConnectionError(connection_error_message(uri, "no connection returned"))
    return conn


def connect(module, readonly=False):
    """Open the connection named by ``module.params['uri']`` or fail the module cleanly."""
    if libvirt is None:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    if etree is None:
        module.fail_json(msg=missing_required_lib("lxml"), exception=LXML_IMPORT_ERROR)
    try:
        return open_connection(module.params["uri"], readonly=readonly)
    except LibvirtConnectionError as exc:
        module.fail_json(msg=str(exc))


def run_guarded(module, run, what):
    """Open the connection, ``run(conn)`` and exit with its result; every failure becomes a message.

    The one entry of every module. A UserError's text is meant for the user as it is (bad input, a
    refused operation); a libvirt error is prefixed with ``what`` ('network lab'). The connection is
    closed either way. Never a traceback. ``run`` returns the result dict (with ``changed``); its
    ``warnings`` (a list of sentences), when it has them, are given as the task's warnings.
    """
    conn = connect(module)
    try:
        result = run(conn)
    except UserError as exc:
        module.fail_json(msg=str(exc), **getattr(exc, "result", {}))  # a fleet's failure keeps its per-guest results
    except libvirt.libvirtError as exc:
        module.fail_json(msg="libvirt error on %s: %s" % (what, exc))
    finally:
        conn.close()
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    module.exit_json(**result)


class Undo:
    """What a multi-step change has made so far, so that a failure part way takes it back.

    Each write that makes or overwrites something registers how to take it back (delete the volume
    it created, put back the file it replaced, undefine the guest it defined); ``rollback`` runs
    them newest first and returns what could not be taken back (for the error message).
    """

    def __init__(self):
        self._steps = []

    def add(self, what, take_back):
        self._steps.append((what, take_back))

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


def lookup_or_none(lookup, name, missing_code):
    """``lookup(name)`` (conn.lookupByName, conn.networkLookupByName, ...), or None when libvirt says
    the object does not exist (``missing_code``, e.g. 'VIR_ERR_NO_NETWORK'); other errors propagate."""
    try:
        return lookup(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == getattr(libvirt, missing_code):
            return None
        raise


# A guest's state as the modules say it (libvirt's VIR_DOMAIN_* numbers): blocked and shutting down still run,
# a crashed guest is off, a suspended one (pmsuspended) is paused.
STATE_NAMES = {1: "running", 2: "running", 3: "paused", 4: "running", 5: "shutoff", 6: "shutoff", 7: "paused"}


def lookup_domain(conn, name):
    """The guest ``name`` on ``conn``, or None."""
    return lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")


def state_of(dom):
    """'running', 'paused', 'shutoff', or 'absent' for None."""
    return "absent" if dom is None else STATE_NAMES.get(dom.state(0)[0], "shutoff")


def libvirt_error_code(exc):
    """The VIR_ERR_* code of a libvirtError, or None for other exceptions."""
    get = getattr(exc, "get_error_code", None)
    return get() if get else None


def version_string(number):
    """libvirt's packed version number (major * 1e6 + minor * 1e3 + micro) as 'major.minor.micro'."""
    number = int(number)
    return "%d.%d.%d" % (number // 1000000, (number // 1000) % 1000, number % 1000)
