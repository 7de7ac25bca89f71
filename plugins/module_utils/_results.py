# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what goes back to the user, as data first and words second.

- ``UserError``: the one failure class. Its message is for people; its ``code`` (one of ``CODES``) and
  its ``result`` (the partial result: per-guest results, the pre-flight's problems, the evidence) are what
  code and playbooks decide on. ``SpecError`` is bad input, naming the option.
- ``problem``: one thing that stops an operation, with its ``kind`` (a code) and its sentence.
- ``diff`` and ``assumed``: one way to build a --diff entry, one wording for what check mode assumes.

Every message passes through ``Wording.apply``: a test rewords them all and checks that no decision
changes (tests/unit/plugins/module_utils/test_results_are_data.py). Nothing here imports the rest of the
collection, so every other module can use it.
"""

from __future__ import annotations

# Every code a result carries, with what it means. Code and playbooks compare against these, never against
# message text; a code not listed here is refused when it is raised (a typo or a rename fails the tests).
CODES = {
    # why a task failed: the failure result's ``code`` (its ``msg`` says it in words)
    "invalid_option": "bad input, found before anything changed; ``option`` names it",
    "missing_library": "a Python library the module needs is missing on the host it runs on",
    "unreachable": "the libvirt daemon at the URI cannot be reached or refused the connection",
    "libvirt_error": "a libvirt call failed; ``libvirt_code`` is libvirt's error code",
    "file_error": "a file on the host the module runs on could not be read or written",
    "refused": "the task refuses what was asked, to keep data or running guests safe; nothing was changed",
    "cordoned": "the host is in maintenance: no guest is created there",
    "conflict": "another writer changed the object during this run; this run's change was not written (run again)",
    "rolled_back": "a write failed part way; what the task had made was taken back",
    "start_failed": "the guest was defined but did not start; a guest this task defined was removed again",
    "guests_failed": "some guests of a fleet failed; ``guests`` has every guest's result",
    "preflight": "the migration's pre-flight found problems (``problems``, ``problem_kinds``); nothing moved",
    "migration_failed": "the migration was tried and failed; the guest stays on the source",
    "not_recovered": "the guest was not restarted; ``evidence`` says which check failed",
    # problem kinds: what stops a migration or a recovery (``problem_kinds``, in the order of ``problems``)
    "same_host": "the destination is the source (the same host UUID)",
    "network_missing": "the destination has no network of that name",
    "network_inactive": "the network is not active on the destination",
    "pool_missing": "the destination has no storage pool of that name",
    "pool_inactive": "the storage pool is not active on the destination",
    "disk_not_shared": "a disk is not on the destination (no shared storage)",
    "disk_unsafe_cache": "a disk's cache mode makes a live migration unsafe",
    "disk_would_be_created": "a disk's volume is not on the target: starting there would create it empty",
    "memory_short": "the destination has too little free memory",
    "cpu_incompatible": "the destination's CPU cannot run the guest's CPU model",
    "arch_missing": "the destination's libvirt runs no guests of the guest's architecture (no emulator for it)",
    "kvm_missing": "the guest is a KVM guest and the destination offers no KVM for its architecture",
    # evidence checks of a recovery (``evidence[].code``)
    "lost_host_silent": "the lost host does not answer",
    "cannot_run_it": "the lost host cannot still run the guest: fenced, or the lock manager guards its disks",
    "runs_nowhere": "the guest runs on no reachable hypervisor",
    "fits_here": "its disks are on shared storage, its networks and pools are here, and there is room",
    "disk_locks": "the disk locks are taken at start (or the fence is the guarantee)",
    # outcomes of a recovery (``outcome``)
    "started": "the guest was (or in check mode would be) started on this hypervisor",
    "left_alone": "the guest already runs on a reachable hypervisor: nothing was done",
    # why a guest stays where it is in a placement plan (``stays[].code``)
    "shut_off": "the guest is shut off: it stays defined where it is",
    "no_room": "no hypervisor has room for it",
    "no_target": "no hypervisor may take it (cordoned, unreachable, or a migration to it failed)",
    "not_run_by_fleet": "the fleet's description does not run it: it is not restarted",
    "home_unreachable": "its home hypervisor does not answer",
    "home_failed": "a migration to its home hypervisor failed in this run",
    "preflight_refused": "the migration's pre-flight refused it",
    "given": "the caller said it stays",
    "rule": "a placement rule keeps it where it is: every hypervisor with room would break a strict rule (``reason`` names it)",
    "not_moved": "the plan found no move for it: where it is serves the plan's goal (``reason`` says why)",
    "cooldown": "it moved recently: it stays until its cooldown after a move ends",
    "move_in_flight": "a migration or another job is in flight on a hypervisor: nothing is planned while it runs",
    "holding": "the imbalance has not stayed above the tolerance for the hold period: nothing moves yet",
    "reserve": "the host is kept up, empty, as a spare (consolidation's reserve)",
    "standby": "the host was emptied and powered off by consolidation; it is woken when demand rises",
    # a guest's place in the cluster, in a fleet's result (``guests[].code``, ``guests[].placement``)
    "at_home": "the guest is on the hypervisor whose list declares it",
    "moved": "the guest is converged where it runs, away from its home (``why`` says since when and by what)",
    "location_unknown": "held back: a hypervisor of the group did not answer and the guest may be there",
    "stale_copy": "a stale definition of a guest that is current on another hypervisor: undefined, disks kept",
    "runs_twice": "the guest runs on two hypervisors: nothing is done to it",
    "defined_twice": "the guest is defined on two hypervisors and which copy is current cannot be told",
}


def known_code(value):
    """``value`` when it is a known code; ValueError otherwise (a code is never made up on the spot)."""
    if value not in CODES:
        raise ValueError("unknown result code %r (add it to _results.CODES with its meaning)" % (value,))
    return value


class Wording:
    """The one hook every message passes through on its way out. ``transform`` is None in use; a test sets
    it to reword every message and checks that the decisions stay the same."""

    transform = None

    @classmethod
    def apply(cls, text):
        return text if cls.transform is None or not isinstance(text, str) else cls.transform(text)


class UserError(Exception):
    """A failure whose message is meant for the user as it is: bad input, a refused operation, a
    missing library. Every module fails with its text and its data (_runner.run_guarded).

    ``code``: one of CODES, for what failed; ``result``: what the task returns with its failure (the
    per-guest results of a fleet, the pre-flight's problems, a recovery's evidence); ``cause``: the error
    underneath (a libvirt error), whose code is returned as ``libvirt_code``.
    """

    code = "refused"

    def __init__(self, message, code=None, result=None, cause=None):
        super().__init__(Wording.apply(message))
        if code is not None:
            self.code = known_code(code)
        self.result = dict(result or {})
        self.cause = cause

    @property
    def cause_text(self):
        """The underlying error's own text (libvirt's words), or None."""
        return None if self.cause is None else str(self.cause)

    @property
    def libvirt_code(self):
        get = getattr(self.cause, "get_error_code", None)
        return get() if get else None

    def fields(self):
        """The failed task's result besides ``msg``: the partial result, the failure's code, libvirt's code."""
        fields = dict(self.result, code=self.code)
        if self.libvirt_code is not None:
            fields["libvirt_code"] = self.libvirt_code
        return fields


class SpecError(UserError, ValueError):
    """Bad input, found before anything changed. The message names the option and what is accepted."""

    code = "invalid_option"

    def __init__(self, option, value, accepted):
        self.option, self.value, self.accepted = option, value, accepted
        super().__init__("option %s: got %r; %s" % (option, value, accepted), result={"option": option})

    def under(self, prefix):
        """The same error for an option nested under ``prefix`` ('disks[0].' + 'size')."""
        return SpecError(prefix + self.option, self.value, self.accepted)


def problem(kind, message, **data):
    """One thing that stops an operation: {"kind": a code from CODES, "message": its sentence, ...data}."""
    return dict(data, kind=known_code(kind), message=Wording.apply(message))


def problem_fields(problems):
    """A failure result's view of its problems: the sentences for people, their kinds (same order) for code."""
    return {"problems": [p["message"] for p in problems], "problem_kinds": [p["kind"] for p in problems]}


def diff(before, after, header):
    """A --diff entry: ``before`` and ``after`` are strings (serialised the same way by the caller, see
    _plan.Plan.diff) or dicts (a spec-level view); '' or {} for a side that does not exist."""
    return {"before": before, "after": after, "before_header": header, "after_header": header}


def assumed(kind, name, what="does not exist yet"):
    """The warning check mode gives when it predicts on an object that does not exist (or run) yet: in
    check mode the earlier task of the play that makes it made nothing (docs/contracts.md, contract 3)."""
    return Wording.apply("check mode: %s %s %s; assuming an earlier task makes it (a real run fails here if it does "
                         "not)" % (kind, name, what))
