# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private (controller side): what the collection's filter plugins share. A filter is a module_utils function wrapped by ``guarded``:
its input comes to it as plain lists and dicts (registered results and hostvars are Ansible's own types), and a
UserError (bad input, named) becomes the AnsibleFilterError Ansible shows."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError


def as_lists_and_dicts(value):
    """Plain lists and dicts all the way down (Ansible hands filters mappings and sequences of its own)."""
    if isinstance(value, Mapping) or (hasattr(value, "items") and hasattr(value, "keys")):
        return {key: as_lists_and_dicts(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_lists_and_dicts(item) for item in value]
    return value


def number(value, option, kind=int):
    """``value`` as an int (or a float), or SpecError naming ``option``."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise SpecError(option, value, "expected a number") from None


def guarded(function):
    """The filter ``function`` with its errors as AnsibleFilterError (its name, signature and docs kept)."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return run
