"""What the tests of runners share: a module's parameters as AnsibleModule hands them over."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

TEST_URI = "test:///default"  # libvirt's in-process test driver (the conn fixture in tests/unit/conftest.py)


def module_params(argument_spec, **given):
    """``given`` validated against ``argument_spec`` by Ansible's own validator, as AnsibleModule does it: every
    option present (its default, or None), sub-options of dicts and lists of dicts too; ``uri`` is the test
    driver's unless given. Input the argument spec refuses raises ValueError with Ansible's messages."""
    if "uri" in argument_spec:
        given.setdefault("uri", TEST_URI)
    result = ArgumentSpecValidator(argument_spec).validate(given)
    if result.error_messages:
        raise ValueError("; ".join(result.error_messages))
    return result.validated_parameters
