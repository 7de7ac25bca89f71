"""What the tests of runners share: a module's parameters as AnsibleModule hands them over."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

TEST_URI = "test:///default"  # libvirt's in-process test driver (the conn fixture in tests/unit/conftest.py)


def module_params(argument_spec, described=None, **given):
    """``given`` (and the options in ``described``, a dict) validated against ``argument_spec`` by Ansible's own
    validator, as AnsibleModule does it: every option present (its default, or None), sub-options of dicts and
    lists of dicts too; ``uri`` is the test driver's unless given. Input the argument spec refuses raises
    ValueError with Ansible's messages."""
    given = dict(described or {}, **given)
    if "uri" in argument_spec:
        given.setdefault("uri", TEST_URI)
    result = ArgumentSpecValidator(argument_spec).validate(given)
    if result.error_messages:
        raise ValueError("; ".join(result.error_messages))
    return result.validated_parameters


class Exited(Exception):
    """A module's exit_json or fail_json: ``result`` is what the task would return, ``failed`` whether it failed."""

    def __init__(self, result, failed):
        super().__init__("failed" if failed else "exited")
        self.result, self.failed = result, failed


class ModuleDouble:
    """What _runner.run_guarded needs of AnsibleModule: params, check mode, warn, exit_json and fail_json (which
    raise Exited with the task's result, its ``warnings`` included as Ansible would show them)."""

    def __init__(self, params, check=False):
        self.params, self.check_mode, self.tmpdir = params, check, None
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **result):
        raise Exited(dict(result, warnings=self.warnings), False)

    def fail_json(self, **result):
        raise Exited(dict(result, failed=True, warnings=self.warnings), True)


def converge_described(conn, check=False, host=None, **given):
    """One guest converged through the guest engine from its description as AnsibleModule hands it over (the
    domain module's argument spec); asserts the engine leaves the normalised spec as it was."""
    # pylint: disable=import-outside-toplevel
    import copy
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import spec as domain_spec
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import converge_guest, options_of
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
    guest = module_params(domain_spec.argument_spec(), **dict(dict(virt_type="qemu"), **given))
    host = host or gather_host(conn)
    spec = normalize_guest(guest, host)
    frozen = copy.deepcopy(spec)
    result = converge_guest(conn, host, spec, options_of(guest), check)
    assert spec == frozen, "converge_guest changed the spec"
    return result
