# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the files the domain module writes on the host it runs on: a guest's Ignition config, which
QEMU reads through fw_cfg. Confined to IGNITION_DIR (normalize.ignition_path), written atomically, taken
back on a failed run (Undo)."""

from __future__ import annotations

import grp
import os

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._files import replace_file


def ignition_file_current(path, config):
    try:
        with open(path, "rb") as handle:
            return handle.read() == config.encode("utf-8")
    except OSError:
        return False


def write_ignition_file(path, config, undo=None):
    """Write the config atomically, readable by the qemu process (group libvirt-qemu when it exists).

    With ``undo``, how to take it back is registered: the previous file comes back, or a new one goes.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    previous = None
    if undo is not None and os.path.lexists(path):
        with open(path, "rb") as handle:
            previous = handle.read()
    _replace_file(path, config.encode("utf-8"))
    if undo is not None:
        undo.add("Ignition file %s" % path,
                 (lambda: os.unlink(path)) if previous is None else (lambda: _replace_file(path, previous)))


def _replace_file(path, data):
    """Atomically (replace_file), readable by the qemu process: group libvirt-qemu and 0640 where that group
    exists and may be given, else 0644."""
    try:
        replace_file(path, data, 0o640, gid=grp.getgrnam("libvirt-qemu").gr_gid, prefix=".kvmfleet-ign-")
    except (KeyError, PermissionError):
        replace_file(path, data, 0o644, prefix=".kvmfleet-ign-")
