# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``cloud_init`` argument spec (the docs in plugins/modules/cloud_init.py describe it); the seed's
content options are the domain module's ``cloud_init`` ones (model.seed_content_options)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import seed_content_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def argument_spec():
    spec = seed_content_options()
    spec.update(
        pool={"type": "str", "required": True},
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        uri={"type": "str", "default": DEFAULT_URI},
    )
    return spec
