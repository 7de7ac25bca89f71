# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: writing a file on the host the module runs on, atomically and without following links.

Nothing here imports the rest of the collection.
"""

from __future__ import annotations

import os
import tempfile


def replace_file(path, data, mode, gid=None, prefix=".kvmfleet-"):
    """Write ``data`` (bytes or text) to a new file next to ``path`` and rename it over ``path``.

    The new file is made by mkstemp (O_EXCL: a link placed there is never written through), and its
    mode (and group, with ``gid``) is set on its descriptor; whatever ``path`` was, a symlink included,
    is replaced, never followed. The directory is made when missing.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            if gid is not None:
                os.fchown(handle.fileno(), 0, gid)
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_files(writes, undo):
    """Make the writes of a file plan (_plan.FileWrite, in order): a file kept across reboots atomically
    (replace_file), a kernel knob in place (it is not a regular file). Each registers with ``undo`` how to take
    it back (the file's previous content or its removal; the knob's previous value). An OSError names the file.
    """
    for write in writes:
        try:
            if write.persistent:
                previous = _read_bytes(write.path)
                replace_file(write.path, write.after, write.mode, gid=write.gid)
                undo.add("file %s" % write.header, (lambda path=write.path: os.unlink(path)) if previous is None else
                         (lambda path=write.path, data=previous, mode=write.mode: replace_file(path, data, mode)))
            else:
                _write_knob(write.path, write.after)
                if write.before is not None:
                    undo.add(write.what, lambda path=write.path, text=write.before: _write_knob(path, text))
        except OSError as exc:
            raise OSError("%s: %s" % (write.path, exc.strerror or exc)) from None


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_knob(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
