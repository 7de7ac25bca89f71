# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain`` module's run: module parameters -> the host's facts -> one converge_guest."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import converge_guest, options_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest


def converge_domain(conn, params, check):
    """The domain module's result for ``params`` on ``conn``."""
    host = gather_host(conn, read_guests=False)  # the other guests' MACs are read if a MAC is derived
    spec = normalize_guest(params, host)
    return converge_guest(conn, host, spec, options_of(params), check)
