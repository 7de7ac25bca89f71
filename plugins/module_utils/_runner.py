# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the shape every resource shares, and every module's one entry.

A resource is three things (docs/architecture.md):

- a spec module (``_<resource>/spec.py``) with its ``argument_spec()``, from its field table where it has one;
- a pure plan over facts (``_plan.Plan``: what changes, before and after, the --diff), unit-tested without a
  daemon;
- a runner, a ``Runner`` subclass: ``Runner(conn, params, check).run()`` reads the facts, plans, and makes
  the changes (one libvirt call each; definitions through ``_libvirt.define``), registering how to take each
  write back with ``self.undo`` (``_libvirt.Undo``, the one rollback) and warning with ``self.warn`` (the one
  way to warn: the result's ``warnings``). It knows nothing of AnsibleModule.

``module_main`` is a module's ``main()``: the argument spec, the runner, the object's name for messages.
``run_guarded`` opens the connection, runs, and turns every outcome into the task's result: a UserError
becomes ``msg`` plus its data (``reason``, the partial result), a libvirt error ``msg`` plus ``libvirt_code``,
never a traceback.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, _load_params, missing_required_lib

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    LIBVIRT_IMPORT_ERROR,
    Undo,
    libvirt,
    DEFAULT_CONNECT_TIMEOUT,
    open_connection,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._input import shape_problems, xml_unsafe
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import LXML_IMPORT_ERROR, etree, schema_warnings


class Runner:
    """One task over one resource: the connection (None for a runner of host files), the module's
    parameters (validated and defaulted), and check mode.

    What every runner shares: ``actions`` (what it did, or would do), ``warnings`` (``warn``), ``undo``
    (how to take back what it made: ``with self.undo.guard("the change to X"):`` around the writes).
    Subclasses implement ``run()`` and return ``self.finish(result)``.
    """

    def __init__(self, conn, params, check, tmpdir=None):
        self.conn, self.params, self.check = conn, params, check
        self.tmpdir = tmpdir  # where a runner may put temporary files (the module's own temporary directory)
        self.actions = []
        self.warnings = []
        self.undo = Undo()

    def warn(self, message):
        """The one way to warn: the result's ``warnings``, shown as the task's warnings."""
        if message not in self.warnings:
            self.warnings.append(message)

    def finish(self, result):
        """The result with the run's warnings (and its actions, unless the result has its own)."""
        result.setdefault("actions", self.actions)
        given = list(result.get("warnings") or [])
        result["warnings"] = given + [warning for warning in self.warnings if warning not in given]
        return result

    def run(self):
        raise NotImplementedError


def run_guarded(module, run, what, connect=True, precheck=None, readonly=False):
    """Open the connection (unless ``connect`` is false), ``run(conn)`` and exit with its result; every
    failure becomes a message with data. The one entry of every module.

    A UserError's text is meant for the user as it is (bad input, a refused operation) and its fields (its
    code, the partial result, its warnings) go with it; a libvirt error or an OS error is prefixed with ``what``
    ('network lab'). The connection is closed either way. Never a traceback. ``run`` returns the result dict
    (with ``changed``); its ``warnings`` are given as the task's warnings. ``precheck(params)`` checks the
    input before the connection is opened (bad input fails the same with the daemon down). ``readonly``: the
    connection is read-only (the _info modules: the daemon itself refuses any change, and a user who may only read
    can run them).
    """
    if connect and libvirt is None:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR,
                         code="missing_library")
    if etree is None:
        module.fail_json(msg=missing_required_lib("lxml"), exception=LXML_IMPORT_ERROR, code="missing_library")
    conn = None
    try:
        unsafe = xml_unsafe(getattr(module, "argument_spec", None) or {}, module.params)
        if unsafe:
            raise SpecError(unsafe[0], unsafe[1], "a character XML cannot hold (NUL or another control character); "
                                                  "nothing was changed")
        if precheck is not None:
            precheck(module.params)
        conn = open_connection(module.params["uri"], readonly=readonly,
                               timeout=module.params.get("connect_timeout")) if connect else None
        result = run(conn)
    except UserError as exc:
        fields = exc.fields()
        _warn(module, fields.pop("warnings", None))
        module.fail_json(msg=str(exc), **fields)
    except OSError as exc:  # a file on the host the module runs on that could not be read or written
        module.fail_json(msg=str(exc) if not connect else "%s: %s" % (what, exc), code="file_error")
    except Exception as exc:  # pylint: disable=broad-except  # only libvirt's errors are caught here
        if libvirt is None or not isinstance(exc, libvirt.libvirtError):
            raise
        _warn(module, [])
        if conn is not None and not _alive(conn):
            module.fail_json(msg="the connection to libvirt at uri %s was lost during the task (the daemon restarted, "
                                 "or the host or its network went away): %s: %s. What the task did before that stays; "
                                 "run it again once the daemon answers, and it converges from there"
                                 % (module.params.get("uri"), what, exc), code="unreachable",
                             libvirt_code=exc.get_error_code())
        module.fail_json(msg="libvirt error on %s: %s" % (what, exc), code="libvirt_error",
                         libvirt_code=exc.get_error_code())
    finally:
        if conn is not None:
            conn.close()
    _warn(module, result.pop("warnings", None))
    module.exit_json(**result)


def _raw_params():
    """The task's arguments as Ansible hands them to the module, before any checking."""
    try:
        return _load_params() or {}
    except (Exception, SystemExit):  # pylint: disable=broad-except  # AnsibleModule reports unreadable arguments
        return {}


def _alive(conn):
    try:
        return bool(conn.isAlive())
    except Exception:  # pylint: disable=broad-except  # a connection that cannot even say is not alive
        return False


def _warn(module, warnings):
    for warning in list(warnings or []) + schema_warnings():
        module.warn(warning)


def module_main(argument_spec, runner, what, connect=True, precheck=None, readonly=False, **module_options):
    """A module's ``main()``: its argument spec, its runner (``runner(conn, params, check)`` with a ``run()``,
    or a function of (conn, params, check) that returns the result), and ``what(params)``, the object's name
    for a libvirt error's message ('guest web01'). ``precheck``, ``readonly``: see run_guarded; ``module_options``: more of
    AnsibleModule's (mutually_exclusive, required_by)."""
    if "uri" in argument_spec:
        argument_spec = dict(argument_spec, connect_timeout={"type": "int", "default": DEFAULT_CONNECT_TIMEOUT})
    problems = shape_problems(argument_spec, _raw_params())
    if problems:  # Ansible's validator would fail on these naming nothing: refused here, naming the option
        module = AnsibleModule(argument_spec={key: {"type": "raw"} for key in argument_spec}, supports_check_mode=True)
        module.fail_json(msg="; ".join(problems), code="invalid_option", option=problems[0].split(":")[0][7:])
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_options)

    def run(conn):
        if isinstance(runner, type) and issubclass(runner, Runner):
            return runner(conn, module.params, module.check_mode, tmpdir=module.tmpdir).run()
        return runner(conn, module.params, module.check_mode)

    run_guarded(module, run, what(module.params), connect, precheck, readonly)
