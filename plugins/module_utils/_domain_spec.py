# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain`` argument spec, shared with modules that take guest specs (``fleet``)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI

_REBOOT_ACTIONS = ["destroy", "restart", "preserve", "rename-restart"]


def _list(**options):
    return {"type": "list", "elements": "dict", "options": options}


def seed_content_options():
    """The seed's content, shared with the cloud_init module. User and vendor data may hold passwords and keys."""
    return {
        "user_data": {"type": "raw", "no_log": True},
        "meta_data": {"type": "dict"},
        "network_config": {"type": "raw"},
        "vendor_data": {"type": "raw", "no_log": True},
    }


def cloud_init_option():
    options = seed_content_options()
    options.update(pool={"type": "str", "required": True}, volume={"type": "str"}, target={"type": "str"})
    return {"type": "dict", "options": options}


def guest_options():
    """The options that describe one guest (everything but the connection)."""
    return {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present",
                  "choices": ["present", "running", "shutoff", "paused", "absent"]},
        "virt_type": {"type": "str", "choices": ["kvm", "qemu"]},
        "arch": {"type": "str"},
        "machine": {"type": "str"},
        "title": {"type": "str"},
        "description": {"type": "str"},
        "memory": {"type": "raw"},
        "current_memory": {"type": "raw"},
        "max_memory": {"type": "raw"},
        "max_memory_slots": {"type": "int"},
        "vcpus": {"type": "int"},
        "max_vcpus": {"type": "int"},
        "cpu": {"type": "dict", "options": {
            "mode": {"type": "str", "choices": ["host-passthrough", "host-model", "custom", "maximum"]},
            "model": {"type": "str"},
            "sockets": {"type": "int"},
            "dies": {"type": "int"},
            "cores": {"type": "int"},
            "threads": {"type": "int"},
            "features": {"type": "list", "elements": "raw"},
            "numa": _list(cpus={"type": "str", "required": True}, memory={"type": "raw", "required": True}),
        }},
        "cputune": {"type": "dict", "options": {
            "vcpupin": _list(vcpu={"type": "int", "required": True}, cpuset={"type": "str", "required": True}),
        }},
        "hugepages": {"type": "bool"},
        "firmware": {"type": "str", "choices": ["bios", "efi"]},
        "secure_boot": {"type": "bool"},
        "tpm": {"type": "bool"},
        "rng": {"type": "bool"},
        "guest_agent": {"type": "bool"},
        "video": {"type": "str", "choices": ["virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none"]},
        "watchdog": {"type": "dict", "options": {
            "model": {"type": "str", "choices": ["i6300esb", "ib700", "diag288", "itco"]},
            "action": {"type": "str", "choices": ["reset", "shutdown", "poweroff", "pause", "none", "dump",
                                                  "inject-nmi"]},
        }},
        "boot": {"type": "dict", "options": {
            "kernel": {"type": "str"},
            "initrd": {"type": "str"},
            "cmdline": {"type": "str"},
            "devices": {"type": "list", "elements": "str", "choices": ["hd", "cdrom", "network", "fd"]},
        }},
        "on_poweroff": {"type": "str", "choices": _REBOOT_ACTIONS},
        "on_reboot": {"type": "str", "choices": _REBOOT_ACTIONS},
        "on_crash": {"type": "str", "choices": _REBOOT_ACTIONS + ["coredump-destroy", "coredump-restart"]},
        "disks": _list(
            dev={"type": "str"},
            device={"type": "str", "default": "disk", "choices": ["disk", "cdrom", "floppy", "lun"]},
            path={"type": "str"},
            pool={"type": "str"},
            volume={"type": "str"},
            block={"type": "str"},
            network={"type": "dict"},
            size={"type": "raw"},
            backing={"type": "str"},
            bus={"type": "str", "choices": ["virtio", "sata", "scsi", "ide", "usb", "fdc"]},
            format={"type": "str", "choices": ["raw", "qcow2", "vmdk", "vdi", "vpc", "qed", "iso"]},
            cache={"type": "str", "choices": ["default", "none", "writethrough", "writeback", "directsync", "unsafe"]},
            io={"type": "str", "choices": ["threads", "native", "io_uring"]},
            discard={"type": "str", "choices": ["unmap", "ignore"]},
            readonly={"type": "bool"},
            shareable={"type": "bool"},
            serial={"type": "str"},
            boot_order={"type": "int"},
        ),
        "interfaces": _list(
            network={"type": "str"},
            portgroup={"type": "str"},
            bridge={"type": "str"},
            direct={"type": "str"},
            direct_mode={"type": "str", "default": "bridge", "choices": ["vepa", "bridge", "private", "passthrough"]},
            mac={"type": "str"},
            model={"type": "str", "default": "virtio"},
            link_state={"type": "str", "choices": ["up", "down"]},
            mtu={"type": "int"},
            vlan={"type": "int"},
            boot_order={"type": "int"},
        ),
        "serials": _list(
            type={"type": "str", "default": "pty", "choices": ["pty", "file", "unix", "null", "stdio"]},
            path={"type": "str"},
            log={"type": "str"},
            log_append={"type": "bool"},
        ),
        "consoles": _list(
            type={"type": "str", "default": "pty", "choices": ["pty", "file", "unix", "null", "stdio"]},
            target={"type": "str", "choices": ["serial", "virtio"]},
        ),
        "graphics": _list(
            type={"type": "str", "default": "vnc", "choices": ["vnc", "spice"]},
            listen={"type": "str"},
            autoport={"type": "bool"},
            port={"type": "int"},
            password={"type": "str", "no_log": True},
        ),
        "hostdevs": _list(
            pci={"type": "str"},
            usb={"type": "str"},
            managed={"type": "bool", "default": True},
        ),
        "cloud_init": cloud_init_option(),
        "ignition": {"type": "raw", "no_log": True},
        "autostart": {"type": "bool"},
        "tags": {"type": "raw"},
        "xml_edits": _list(
            xpath={"type": "str", "required": True},
            value={"type": "str"},
            attributes={"type": "dict"},
            fragment={"type": "str"},
            absent={"type": "bool"},
        ),
        "xml": {"type": "str"},
        "restart": {"type": "str", "default": "never", "choices": ["never", "if_needed"]},
        "shutdown_timeout": {"type": "int", "default": 120},
        "force_off": {"type": "bool", "default": False},
        "remove_storage": {"type": "bool", "default": False},
        "remove_shared_storage": {"type": "bool", "default": False},
    }


def argument_spec():
    spec = guest_options()
    spec["uri"] = {"type": "str", "default": DEFAULT_URI}
    return spec
