# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain`` module's entry: module parameters -> the host's facts -> one converge_guest."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import apply_options, converge_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import run_guarded


def run_module(module):
    """Entry point for plugins/modules/domain.py."""
    params = module.params

    def run(conn):
        host = gather_host(conn, read_guests=False)  # the other guests' MACs are read if a MAC is derived
        spec = normalize_guest(params, host)
        return converge_guest(conn, host, spec, apply_options(params), module.check_mode)

    run_guarded(module, run, "guest %s" % params["name"])
