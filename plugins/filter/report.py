# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the fleet report (playbooks/report.yml): the report's data from what the playbook read, and the
self-contained HTML page drawn from it (module_utils/_report/)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.plugin_utils._filters import as_lists_and_dicts, guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._report import data as report_data
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._report import html as report_html
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


@guarded
def fleet_report_data(view, host_results, guest_results, plans=None, title="Fleet report", generated=None,
                      sample_seconds=None):
    view = as_lists_and_dicts(view) or {}
    if "hosts" not in view or "guests" not in view:
        raise UserError("fleet_report_data: expected the placement view (kvmfleet.libvirt.placement_view), with hosts "
                        "and guests")
    return report_data.report_data(view, as_lists_and_dicts(host_results) or [], as_lists_and_dicts(guest_results) or [],
                                   None if plans is None else as_lists_and_dicts(plans), title=title,
                                   generated=generated, sample_seconds=sample_seconds)


@guarded
def fleet_report_html(data):
    data = as_lists_and_dicts(data) or {}
    if not all(key in data for key in ("hosts", "guests", "window", "drift")):
        raise UserError("fleet_report_html: expected what kvmfleet.libvirt.fleet_report_data returns")
    return report_html.render(data)


class FilterModule:
    def filters(self):
        return {"fleet_report_data": fleet_report_data, "fleet_report_html": fleet_report_html}
