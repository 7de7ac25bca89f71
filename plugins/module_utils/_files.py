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
