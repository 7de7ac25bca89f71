#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain
short_description: Declare one libvirt guest in YAML and converge it idempotently, live where possible
version_added: 0.1.0
requirements:
  - pycdlib and PyYAML on the managed host, for O(cloud_init)
description:
  - Reads the guest's current XML from libvirt, applies the declared fields to it, and writes the
    result back only when something differs. A second run with the same input changes nothing.
  - Only what is declared is managed. UUID, MAC addresses, PCI and drive addresses, controllers,
    unknown elements and other tools' C(<metadata>) are kept as they are.
  - On a running guest, attaching and detaching disks and NICs, changing cdrom media, NIC link state,
    O(current_memory) and O(vcpus) are applied live and to the persistent config. Every other
    change goes to the persistent config, and the result says RV(reboot_required) with the reasons;
    O(restart=if_needed) restarts the guest to apply them.
  - Guests it manages carry a marker and their O(tags) in the collection's own metadata namespace. Adopting a guest
    another tool made (virt-install, virt-manager, C(virsh define)) adds only that marker, with
    C(virDomainSetMetadata) and no define, so the rest of its definition stays byte for byte as it was; the result
    says RV(adopted).
  - A device the options of its list cannot express (a NIC of type C(vhostuser) or C(ethernet), a disk with a
    relative path, a host device in capabilities mode) is not that list's - it is kept as it is whatever the list
    says, M(kvmfleet.libvirt.domain_info) leaves it out of its read-back spec, and O(xml_edits) changes or removes
    it. Declaring one by its identity (its target dev, its MAC) is an error.
  - A guest whose definition already fails libvirt's schema (libvirt defines without validating when not asked to;
    virt-install writes relative C(<loader>) paths) is still converged when the change adds no schema error; a
    warning names the invalid parts. A change that makes a part invalid is refused, naming the part and the option.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same plan as a real run and reports the same C(changed) and diff.
  diff_mode:
    support: full
    details:
      - The diff is the guest's persistent XML before and after; graphics passwords are masked, and cloud-init and
        Ignition content shows as a prefix of its hash.
options:
  name:
    description: Name of the guest.
    type: str
    required: true
  uuid:
    description:
      - The guest's UUID, its identity beside its O(name), in any form libvirt takes (32 hexadecimal digits, with or
        without dashes, either case); compared and returned as libvirt writes it (lowercase V(8-4-4-4-12)).
      - A new guest is defined with it. Without it, libvirt picks a new guest's UUID, and an existing guest's UUID is
        never changed.
      - A guest renamed in the description stays the same guest. When no guest has the name O(name) but one with
        this UUID exists under another name, that guest is renamed (C(virDomainRename)) and then converged;
        RV(actions) lists C(rename OLD to NEW) and RV(renamed_from) names the old name. libvirt renames only a
        guest that is shut off; a running one is converged under its old name, with a warning and
        RV(rename_pending), and is renamed by the first run after it has been shut off. Disk volumes, the default
        O(cloud_init.volume) and the O(ignition) file are named by the description, not renamed with the guest.
      - A guest of the name O(name) with another UUID is refused before anything changes (a UUID cannot change);
        to make a different guest, give it a different name, or remove the old one first.
      - With O(state=absent), only a guest named O(name) is removed; a guest with this UUID under another name is
        left alone, with a warning.
    type: str
  state:
    description:
      - V(present) defines the guest and leaves its power state alone.
      - V(running), V(paused), V(shutoff) also bring it to that power state. V(shutoff) asks the guest to
        shut down and waits O(shutdown_timeout) seconds, then powers it off only if O(force_off=true).
      - V(absent) powers the guest off and undefines it (with its UEFI NVRAM). Disk images are kept
        unless O(remove_storage=true). A guest with snapshots is refused.
    type: str
    choices: [present, running, shutoff, paused, absent]
    default: present
  virt_type:
    description:
      - Domain type. V(kvm) needs hardware acceleration; V(qemu) is software emulation.
      - Defaults to V(kvm) for a new guest.
    type: str
    choices: [kvm, qemu]
  arch:
    description: Guest CPU architecture; a new guest defaults to the host's.
    type: str
  machine:
    description:
      - Machine type, for example V(q35) or V(pc). libvirt stores the versioned name (V(pc-q35-7.2)); the
        alias and the versioned name compare equal, with the aliases of the guest's O(arch).
      - Left out, a new guest gets libvirt's default for its architecture, except V(virt) on aarch64, armv7l, riscv
        and loongarch64 (libvirt would pick a 32-bit ARM board, C(integratorcp), for aarch64). An existing guest keeps
        its machine.
    type: str
  title:
    description: Short title of the guest.
    type: str
  description:
    description: Free-form description of the guest.
    type: str
  memory:
    description:
      - Memory at boot, at least 1 MiB. An integer is MiB; a string takes a unit, for example V(2GiB) or V(512MiB).
      - A new guest gets 1 GiB. When O(current_memory) is not given it follows O(memory).
    type: raw
  current_memory:
    description:
      - Balloon target, at most O(memory). Applied live to a running guest.
    type: raw
  max_memory:
    description:
      - Memory hotplug ceiling (C(<maxMemory>)); needs O(cpu.numa). An integer is MiB; a string takes a unit.
    type: raw
  max_memory_slots:
    description: Memory hotplug slots. Defaults to 16 when O(max_memory) is given.
    type: int
  vcpus:
    description: Number of vCPUs online (1 to 4096). Applied live to a running guest, up to O(max_vcpus).
    type: int
  max_vcpus:
    description: Maximum number of vCPUs (the hotplug ceiling). Defaults to O(vcpus).
    type: int
  cpu:
    description: Guest CPU model and topology.
    type: dict
    suboptions:
      mode:
        description: CPU mode. A new V(kvm) guest gets V(host-model).
        type: str
        choices: [host-passthrough, host-model, custom, maximum]
      model:
        description: CPU model name for O(cpu.mode=custom).
        type: str
      sockets:
        description: Sockets.
        type: int
      dies:
        description: Dies per socket.
        type: int
      cores:
        description: Cores per die.
        type: int
      threads:
        description: Threads per core. Declaring one of O(cpu.sockets), O(cpu.cores), O(cpu.threads) sets the others to 1 when unset.
        type: int
      features:
        description:
          - CPU features, each a name (policy V(require)) or a dict with C(name) and C(policy)
            (V(force), V(require), V(optional), V(disable), V(forbid)). Compared as a set.
        type: list
        elements: raw
      numa:
        description: Guest NUMA cells, in order (cell ids are their positions).
        type: list
        elements: dict
        suboptions:
          cpus:
            description: vCPUs of the cell, for example V(0-1).
            type: str
            required: true
          memory:
            description: Memory of the cell (an integer is MiB; a string takes a unit).
            type: raw
            required: true
  cputune:
    description: vCPU placement.
    type: dict
    suboptions:
      vcpupin:
        description: Pin vCPUs to host CPUs. Compared as a set.
        type: list
        elements: dict
        suboptions:
          vcpu:
            description: Guest vCPU number.
            type: int
            required: true
          cpuset:
            description: Host CPUs, for example V(2-3).
            type: str
            required: true
  hugepages:
    description: Back guest memory with hugepages.
    type: bool
  firmware:
    description:
      - V(efi) uses libvirt's firmware autoselection (OVMF on x86, AAVMF on aarch64, C(qemu-efi-aarch64)); V(bios) is
        SeaBIOS (on ppc64le and s390x, their own firmware). A UEFI guest keeps its NVRAM across runs; O(state=absent)
        removes it.
      - A new UEFI guest with a direct kernel boot (O(boot.kernel)) and no O(secure_boot) gets secure boot off, as the
        firmware loads that kernel from QEMU, not through a signed shim, and a firmware enforcing secure boot (the
        one libvirt picks on aarch64 where Microsoft's keys are installed) refuses it.
      - Where the guest's architecture and machine offer no UEFI firmware (their domain capabilities), V(efi) is
        refused before anything is written.
    type: str
    choices: [bios, efi]
  secure_boot:
    description: UEFI secure boot with the default keys enrolled (implies O(firmware=efi); enables SMM). Needs a q35 machine.
    type: bool
  tpm:
    description: An emulated TPM 2.0 (swtpm; the CRB interface on x86, aarch64's C(tpm-tis), ppc64's C(tpm-spapr); s390x can have none).
    type: bool
  rng:
    description: A virtio RNG fed from the host's /dev/urandom. A new guest gets one unless this is false.
    type: bool
  guest_agent:
    description: The QEMU guest agent channel. A new guest gets one unless this is false.
    type: bool
  video:
    description:
      - Model of the (first) video device. A change of model drops the old model's memory sizes (C(ram), C(vram),
        C(vgamem)); libvirt gives the new one its defaults.
    type: str
    choices: [virtio, qxl, vga, cirrus, bochs, ramfb, none]
  video_heads:
    description: Number of displays (heads) of the (first) video device, for a multi-monitor desktop.
    type: int
    version_added: 0.2.0
  video_accel3d:
    description:
      - 3D acceleration of the (first) video device (C(<acceleration accel3d>); V(virtio) with virgl). QEMU needs a
        host GPU render node to start such a guest; see the Desktops section of docs/domain.md.
    type: bool
    version_added: 0.2.0
  spice_agent:
    description:
      - The SPICE agent channel (C(spicevmc), C(com.redhat.spice.0)) that spice-vdagent in the guest uses for
        clipboard sharing and to follow the client's window size. At most one of this and O(qemu_vdagent).
    type: bool
    version_added: 0.2.0
  qemu_vdagent:
    description:
      - QEMU's own agent channel (C(qemu-vdagent), C(com.redhat.spice.0)) with clipboard sharing and client mouse
        mode, for a VNC display (the guest runs spice-vdagent). At most one of this and O(spice_agent).
    type: bool
    version_added: 0.2.0
  watchdog:
    description: A watchdog device.
    type: dict
    suboptions:
      model:
        description: Watchdog model. Defaults to V(i6300esb) when O(watchdog.action) is given.
        type: str
        choices: [i6300esb, ib700, diag288, itco]
      action:
        description: What happens when the watchdog fires.
        type: str
        choices: [reset, shutdown, poweroff, pause, none, dump, inject-nmi]
  vsock:
    description:
      - A virtio vsock device (host<->guest sockets, C(AF_VSOCK)) with a context ID libvirt picks (C(<cid auto='yes'/>)).
        The CID it picks is never a difference.
    type: bool
    version_added: 0.2.0
  vsock_cid:
    description: A fixed vsock context ID instead of an automatic one (brings O(vsock)).
    type: int
    version_added: 0.2.0
  panic:
    description:
      - A panic notifier device (C(<panic model=...>)), which tells the host the guest crashed (see O(on_crash)).
        V(isa) (pvpanic) on x86, V(pseries) on POWER, V(s390) on System z, V(hyperv) for Windows guests.
    type: str
    choices: [isa, pseries, hyperv, s390]
    version_added: 0.2.0
  balloon:
    description: The memory balloon (C(<memballoon>)); libvirt gives an x86 guest a virtio one.
    type: dict
    version_added: 0.2.0
    suboptions:
      model:
        description: Balloon model (V(none) for no balloon). Defaults to V(virtio) when another option is given.
        type: str
        choices: [virtio, virtio-transitional, virtio-non-transitional, xen, none]
      autodeflate:
        description: Let the guest take memory back from the balloon when it runs out (deflate on OOM).
        type: bool
      free_page_reporting:
        description: The guest reports free pages, which the host reclaims.
        type: bool
      stats_period:
        description: Seconds between the balloon's memory statistics.
        type: int
  iommu:
    description:
      - A virtual IOMMU. V(intel) needs a q35 machine (O(machine)=V(q35); another machine is an error naming this
        option) and brings the split I/O APIC (C(<ioapic driver='qemu'/>)) its interrupt remapping needs.
    type: str
    choices: [intel, smmuv3, virtio]
    version_added: 0.2.0
  filesystems:
    description:
      - Host directories shared with the guest (C(<filesystem type='mount'>)), identified by their
        O(filesystems[].target) tag. When this list is given, shares not in it are removed; when it is omitted, shares
        are left alone. A running guest gets a new or removed share at its next boot (RV(reboot_required)).
      - A V(virtiofs) share needs the guest's memory shared with virtiofsd; the module sets that up with it
        (C(<memoryBacking><source type='memfd'/><access mode='shared'/>)) unless the memory is shared already, and
        leaves it when the share goes. The guest mounts it with C(mount -t virtiofs TAG /mnt); a 9p share
        (O(filesystems[].driver)=V(path)) with C(mount -t 9p -o trans=virtio TAG /mnt).
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      source:
        description: The host directory (absolute path).
        type: str
      target:
        description: The tag the guest mounts the share by (up to 36 letters, digits or C(_.+-)).
        type: str
        required: true
      driver:
        description: V(virtiofs), or 9p through V(path) (libvirt's default for 9p) or V(handle).
        type: str
        choices: [virtiofs, path, handle]
        default: virtiofs
      accessmode:
        description:
          - How the guest's file owners and modes map to the host's. V(passthrough) (libvirt's default; the only
            one virtiofs has), or for 9p V(mapped) (kept in extended attributes) or V(squash).
        type: str
        choices: [passthrough, mapped, squash]
      readonly:
        description: Share the directory read-only (9p only; libvirt 9.0 refuses it for virtiofs).
        type: bool
  boot:
    description: Direct kernel boot.
    type: dict
    suboptions:
      kernel:
        description: Path of the kernel image on the hypervisor.
        type: str
      initrd:
        description: Path of the initrd image on the hypervisor.
        type: str
      cmdline:
        description: Kernel command line.
        type: str
      devices:
        description: Boot device order. Not together with per-device O(disks[].boot_order).
        type: list
        elements: str
        choices: [hd, cdrom, network, fd]
  on_poweroff:
    description: What happens when the guest powers off.
    type: str
    choices: [destroy, restart, preserve, rename-restart]
  on_reboot:
    description: What happens when the guest reboots.
    type: str
    choices: [destroy, restart, preserve, rename-restart]
  on_crash:
    description: What happens when the guest crashes.
    type: str
    choices: [destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart]
  disks:
    description:
      - The guest's disks, identified by their target O(disks[].dev). When this list is given, disks not in it
        are removed from the guest (their images are kept); when it is omitted, disks are left alone.
      - Reordering the list changes nothing.
    type: list
    elements: dict
    suboptions:
      dev:
        description:
          - Target device name, for example V(vda). Defaults to the next free name for the bus
            (V(vda), V(vdb) for virtio; V(sda) for sata and scsi), in list order.
        type: str
      device:
        description: Kind of drive.
        type: str
        choices: [disk, cdrom, floppy, lun]
        default: disk
      path:
        description:
          - Image file on the hypervisor. With O(disks[].size), a missing file is created as a volume of the
            storage pool whose directory holds it.
          - For a cdrom, the ISO image; omit it for an empty drive.
        type: str
      pool:
        description: Storage pool of O(disks[].volume).
        type: str
      volume:
        description: Volume name in O(disks[].pool). Created when missing and O(disks[].size) is given.
        type: str
      block:
        description: Host block device, for example V(/dev/sdb).
        type: str
      network:
        description:
          - Network disk source, a dict with C(protocol) (rbd, iscsi, nbd, gluster, http, https, ftp, ssh), C(name)
            (for example V(pool/image) for rbd) and C(hosts), a list of dicts with C(name), C(port) and C(transport).
          - Authentication and other details of the source go through O(xml_edits).
        type: dict
      size:
        description:
          - Size of the image, with its unit, for example V(20GiB) or V(512MiB). A bare number is refused (it meant
            GiB before version 0.2; every disk size in the collection now needs its unit).
          - A missing image is created with this size; a smaller one is grown (live when the guest runs); a larger one
            is refused, never shrunk.
        type: raw
      backing:
        description:
          - Base image for a missing image, which is then created as a thin qcow2 overlay on it (many guests can
            share one base image, which is never written to). The name of a volume in the disk's pool, or the absolute
            path of a volume of any pool.
          - The overlay's size is O(disks[].size), by default the base image's. Used only to create the image; an
            existing image is not compared with it.
        type: str
      bus:
        description: Bus. Defaults to V(virtio) for disks and V(sata) for cdroms.
        type: str
        choices: [virtio, sata, scsi, ide, usb, fdc]
      format:
        description:
          - Image format. Read from the volume when not given; new volumes are V(qcow2).
        type: str
        choices: [raw, qcow2, vmdk, vdi, vpc, qed, iso]
      cache:
        description: Host cache mode.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      io:
        description: I/O mode.
        type: str
        choices: [threads, native, io_uring]
      discard:
        description: Whether discard requests reach the image.
        type: str
        choices: [unmap, ignore]
      readonly:
        description: Read-only disk. Cdroms always are.
        type: bool
      shareable:
        description: Disk may be shared between guests.
        type: bool
      serial:
        description: Serial number the guest sees.
        type: str
      boot_order:
        description: Position in the boot order.
        type: int
  interfaces:
    description:
      - The guest's NICs, identified by O(interfaces[].mac) when given, otherwise by position among the guest's NICs.
        An existing NIC keeps its MAC. A new NIC without a MAC gets one derived from the guest name and its
        position (prefix 52:54:00, unique on the host), so a guest rebuilt from the same YAML gets the same MACs.
      - When this list is given, NICs not in it are removed; when it is omitted, NICs are left alone.
    type: list
    elements: dict
    suboptions:
      network:
        description: libvirt network to connect to.
        type: str
      portgroup:
        description: Port group of O(interfaces[].network).
        type: str
      bridge:
        description: Existing host bridge to connect to.
        type: str
      direct:
        description: Host interface for a macvtap (direct) connection.
        type: str
      direct_mode:
        description: macvtap mode of O(interfaces[].direct).
        type: str
        choices: [vepa, bridge, private, passthrough]
        default: bridge
      user:
        description:
          - User-mode networking (C(type='user'), QEMU's own NAT, no host setup; the one network an unprivileged
            C(qemu:///session) daemon gives a guest). One of O(interfaces[].network), O(interfaces[].bridge),
            O(interfaces[].direct) or O(interfaces[].user) per NIC.
        type: bool
      hostdev:
        description:
          - A host PCI NIC given to the guest (C(type='hostdev'), managed), such as an SR-IOV virtual function, by its
            PCI address (V(0000:03:10.1)). It has no O(interfaces[].model). Starting the guest fails, with libvirt's
            reason, when the host has no such device.
        type: str
        version_added: 0.2.0
      vdpa:
        description: A vhost-vdpa character device (C(type='vdpa')), for example V(/dev/vhost-vdpa-0).
        type: str
        version_added: 0.2.0
      vhostuser:
        description:
          - The unix socket of a vhost-user backend (C(type='vhostuser'), such as OVS-DPDK). Brings shared guest
            memory as O(filesystems) do.
        type: str
        version_added: 0.2.0
      vhostuser_mode:
        description: Whether QEMU connects to O(interfaces[].vhostuser) (V(client)) or listens on it (V(server)).
        type: str
        choices: [client, server]
        default: client
        version_added: 0.2.0
      mac:
        description: MAC address.
        type: str
      model:
        description: NIC model.
        type: str
        default: virtio
      link_state:
        description: Link state; changed live on a running guest.
        type: str
        choices: [up, down]
      mtu:
        description: MTU of the host side of the NIC.
        type: int
      vlan:
        description: VLAN tag (on networks and bridges that support it).
        type: int
      boot_order:
        description: Position in the boot order.
        type: int
  serials:
    description:
      - Serial ports, by position. A new guest gets one V(pty) serial port and a console on it.
    type: list
    elements: dict
    suboptions:
      type:
        description:
          - Backend. Settings of a backend other than O(serials[].path) (a V(tcp) port's host and service, say) are
            not options; an existing port's are kept as they are, and O(xml_edits) sets them.
        type: str
        choices: [pty, file, unix, "null", stdio, dev, pipe, tcp, udp, vc, spicevmc, spiceport, nmdm, qemu-vdagent, dbus]
        default: pty
      path:
        description: File or socket path for V(file) and V(unix).
        type: str
      log:
        description: Also write everything the guest prints to this file (through virtlogd).
        type: str
      log_append:
        description: Append to O(serials[].log) rather than truncate it at start.
        type: bool
  consoles:
    description: Consoles, by position.
    type: list
    elements: dict
    suboptions:
      type:
        description: Backend.
        type: str
        choices: [pty, file, unix, "null", stdio, dev, pipe, tcp, udp, vc, spicevmc, spiceport, nmdm, qemu-vdagent, dbus]
        default: pty
      target:
        description: Console target.
        type: str
        choices: [serial, virtio, xen, lxc, openvz, sclp, sclplm]
  graphics:
    description:
      - Graphical consoles, at most one of each type. V(vnc), V(spice) and V(rdp) are remote displays with a listen
        address, a port and a password; V(sdl), V(egl-headless), V(dbus) and V(desktop) are local, declared by type
        alone (their other settings, an C(egl-headless) render node say, are kept as they are).
      - A type the guest does not have yet must be one its domain capabilities list (libvirt 9.0's QEMU driver has no
        V(rdp) or V(desktop)); otherwise the error names the option and the types offered, before anything is written.
    type: list
    elements: dict
    suboptions:
      type:
        description: Protocol.
        type: str
        choices: [vnc, spice, rdp, sdl, egl-headless, dbus, desktop]
        default: vnc
      listen:
        description: Address to listen on.
        type: str
      autoport:
        description:
          - Let libvirt pick the port. O(graphics[].listen) without O(graphics[].port) implies V(true) (a SPICE display
            with neither port nor autoport listens nowhere, libvirt's listen type C(none)).
        type: bool
      port:
        description: Fixed port; implies O(graphics[].autoport=false).
        type: int
      password:
        description:
          - Console password (VNC allows at most 8 characters). Never shown in results or diffs.
          - A running guest takes a new password live (virDomainUpdateDeviceFlags), its persistent config too.
        type: str
      gl:
        description: OpenGL rendering (C(<gl enable>)); for V(spice), V(sdl) and V(dbus) displays.
        type: bool
        version_added: 0.2.0
      clipboard:
        description: Clipboard sharing between the SPICE client and the guest (C(<clipboard copypaste>)); V(spice) only.
        type: bool
        version_added: 0.2.0
  inputs:
    description:
      - Input devices on the USB or virtio bus, by position. When this list is given, such input devices not in it
        are removed; attached and detached live on a running guest.
      - The PS/2 mouse and keyboard libvirt adds to every x86 guest by itself are not in this list and are kept.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      type:
        description: A V(tablet) gives absolute pointing (the guest's pointer follows the client's).
        type: str
        choices: [tablet, mouse, keyboard]
        default: tablet
      bus:
        description: Bus.
        type: str
        choices: [usb, virtio]
        default: usb
  sounds:
    description:
      - Sound cards, by position. When this list is given, sound cards not in it are removed. A running guest takes
        a new or removed one at its next boot.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      model:
        description: Model.
        type: str
        choices: [ich9, ich6, ich7, ac97, es1370, sb16, usb, pcspk]
        default: ich9
  audio:
    description:
      - Audio backends, by position (libvirt's C(<audio>) with C(id) 1, 2, ...), where the sound cards' audio goes.
        V(spice) sends it to the SPICE client. When this list is given, backends not in it are removed.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      type:
        description: Backend.
        type: str
        choices: [spice, none, dbus, pulseaudio, pipewire, alsa, oss, sdl, jack, file]
        default: spice
  redirdevs:
    description:
      - USB redirection channels (C(<redirdev bus='usb' type='spicevmc'>)), through which a SPICE client plugs its
        local USB devices into the guest, by position. A count (V(2)) or a list of dicts with C(bus) (V(usb)) and
        C(type) (V(spicevmc)), the defaults.
      - When given, redirection channels not in it are removed; attached and detached live on a running guest.
    type: raw
    version_added: 0.2.0
  smartcards:
    description:
      - Smartcard readers, at most one of each mode. When this list is given, smartcards not in it are removed (those
        in C(host-certificates) mode are kept). A running guest takes a change at its next boot.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      mode:
        description: V(passthrough) passes the SPICE client's reader through; V(host) uses the host's NSS database.
        type: str
        choices: [passthrough, host]
        default: passthrough
      type:
        description: The channel of a V(passthrough) smartcard (the default, V(spicevmc)).
        type: str
        choices: [spicevmc]
  hostdevs:
    description:
      - Host devices passed through, identified by host address. When this list is given, host devices not in it are
        removed; attached and detached live on a running guest.
    type: list
    elements: dict
    suboptions:
      pci:
        description: PCI address of the host device, for example V(0000:03:00.0).
        type: str
      usb:
        description: USB vendor and product id, for example V(1d6b:0002).
        type: str
      managed:
        description: Let libvirt detach the device from its host driver.
        type: bool
        default: true
  cloud_init:
    description:
      - A cloud-init NoCloud seed for the guest - an ISO labelled C(cidata) built in Python (pycdlib), stored as a
        volume in O(cloud_init.pool) and attached as a read-only SATA cdrom.
      - The seed is rebuilt and written into its volume only when its content changes; a content hash is kept in the
        guest's kvmfleet metadata (C(<kvmfleet:cloud-init hash=...>)), the ISO is not read to compare. On a running
        guest the new content is a live media change on the same target (cloud-init itself reads it at boot).
      - The cdrom is one of the guest's disks (identity - its target dev); with O(disks) given, it is added to them.
      - Leaving O(cloud_init) out later keeps the seed as it is, unless O(disks) is given - the whole disk list. Then
        the seed's cdrom is detached (unless O(disks) names its target dev) and the seed's metadata goes; with
        O(remove_storage=true) its volume is deleted too (not one another guest uses).
      - O(cloud_init.user_data) and O(cloud_init.vendor_data) are C(no_log); results and diffs never carry them, the
        diff shows a prefix of the content hash. Ansible masks every value of a C(no_log) option wherever it appears
        in the output, so keep short, common values (the hostname) in O(cloud_init.meta_data).
    type: dict
    suboptions:
      pool:
        description: Storage pool (active) of the seed volume.
        type: str
        required: true
      volume:
        description:
          - Name of the seed volume. Defaults to C(<name>-cidata.iso).
          - An existing volume of that name is written into only when it already holds a C(cidata) ISO.
        type: str
      target:
        description: Target dev of the seed cdrom. Defaults to the one it is attached at, or the next free C(sdX).
        type: str
      user_data:
        description:
          - User data. A dict is rendered as a C(#cloud-config) document; a string is used as it is and must start
            with C(#cloud-config) (then it must be a YAML mapping), C(#!), C(#include), C(#cloud-boothook),
            C(#part-handler), C(## template) or be a MIME multi-part document.
        type: raw
      meta_data:
        description:
          - Meta data, for example C(local-hostname). C(local-hostname) defaults to O(name); C(instance-id) defaults to
            C(iid-<guest UUID>), stable for the life of the guest.
        type: dict
      network_config:
        description: Network configuration version 2 (netplan style), a dict or a YAML string with C(version) 2.
        type: raw
      vendor_data:
        description: Vendor data, in the same forms as O(cloud_init.user_data).
        type: raw
  ignition:
    description:
      - An Ignition config for Fedora CoreOS and other Ignition-based guests, as a dict or a JSON string with
        C(ignition.version). It is written to C(/var/lib/libvirt/kvmfleet/ignition/<name>.ign) on the hypervisor
        (readable by QEMU) and passed through QEMU's fw_cfg as C(opt/com.coreos/config)
        (C(<sysinfo type='fwcfg'>)).
      - Compared by a content hash kept in the guest's kvmfleet metadata. Ignition runs at the first boot only, so a
        change on a running guest is reported with RV(reboot_required).
      - C(no_log). Needs a local O(uri).
    type: raw
  autostart:
    description: Start the guest when the host boots.
    type: bool
  tags:
    description:
      - Tags stored in the guest's kvmfleet metadata, as a list of names or a dict of name to value.
        The inventory plugin groups guests by them.
    type: raw
  xml_edits:
    description:
      - Edits for anything in libvirt's domain format the friendly options do not cover, applied after them.
        Each item has an O(xml_edits[].xpath) and exactly one of O(xml_edits[].value),
        O(xml_edits[].attributes), O(xml_edits[].fragment) or O(xml_edits[].absent).
      - An XPath that matches nothing fails (except with O(xml_edits[].absent)).
    type: list
    elements: dict
    suboptions:
      xpath:
        description: XPath of the element(s) to edit, for example V(/domain/features). Ending in C(/@name), the attribute.
        type: str
        required: true
      value:
        description: Text (or attribute value) to set.
        type: str
      attributes:
        description: Attributes to set on the matched elements; a null value removes the attribute.
        type: dict
      fragment:
        description: An XML element to add as a child of the matched elements unless an identical child exists.
        type: str
      absent:
        description: Remove the matched elements.
        type: bool
  xml:
    description:
      - A whole domain document to start from when the guest does not exist yet. The other options are applied on
        top of it. Ignored for an existing guest.
    type: str
  restart:
    description:
      - V(if_needed) restarts a running guest (graceful shutdown, then start) when changes need a reboot.
    type: str
    choices: [never, if_needed]
    default: never
  shutdown_timeout:
    description: Seconds to wait for a graceful shutdown.
    type: int
    default: 120
  force_off:
    description: Power the guest off when it does not shut down within O(shutdown_timeout).
    type: bool
    default: false
  remove_storage:
    description:
      - With O(state=absent), also delete the guest's disk volumes. With a guest that keeps existing, delete the
        volume of a cloud-init seed this task detaches (see O(cloud_init)).
      - A disk image that another guest also uses (a C(shareable) disk, say) is not deleted behind its back; the
        task is refused, naming the other guest, unless O(remove_shared_storage=true).
    type: bool
    default: false
  remove_shared_storage:
    description:
      - With O(remove_storage=true), also delete disk images that other guests still use. They are then left
        pointing at a missing file.
    type: bool
    default: false
notes:
  - Secrets (O(graphics[].password), O(cloud_init.user_data), O(cloud_init.vendor_data), O(ignition)) are C(no_log).
    They never appear in a result, warning, error or diff, old or new value alike; a changed password shows as
    C(<secret changed>) in RV(changes) and as C(******** (changed)) in the diff.
  - Names of guests, and of the networks, pools and volumes a guest refers to, are 1 to 200 bytes (volumes 255)
    without C(/) or control characters and not C(.) or C(..) (libvirt keeps them as file names). They are checked
    before anything is written, in check mode too.
seealso:
  - module: kvmfleet.libvirt.host_info
"""

EXAMPLES = r"""
- name: A guest with a disk and a NIC, running
  kvmfleet.libvirt.domain:
    name: web01
    memory: 2GiB
    vcpus: 2
    disks:
      - pool: default
        volume: web01.qcow2
        size: 20GiB
    interfaces:
      - network: default
    tags: {role: web, env: prod}
    state: running
    autostart: true

- name: Hot-plug a second disk and lower the balloon, live
  kvmfleet.libvirt.domain:
    name: web01
    current_memory: 1GiB
    disks:
      - pool: default
        volume: web01.qcow2
      - pool: default
        volume: web01-data.qcow2
        size: 50GiB

- name: Insert an ISO into the cdrom of a running guest
  kvmfleet.libvirt.domain:
    name: web01
    disks:
      - pool: default
        volume: web01.qcow2
      - device: cdrom
        path: /var/lib/libvirt/images/tools.iso

- name: A configured machine from one entry - an overlay on a shared base image and a cloud-init seed
  kvmfleet.libvirt.domain:
    name: web02
    memory: 2GiB
    disks:
      - pool: default
        volume: web02.qcow2
        backing: debian-12-genericcloud.qcow2
        size: 20GiB
    interfaces:
      - network: default
    cloud_init:
      pool: default
      meta_data:
        local-hostname: web02
      user_data:
        users:
          - name: admin
            ssh_authorized_keys: ["{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"]
            sudo: ALL=(ALL) NOPASSWD:ALL
        packages: [nginx]
      network_config:
        version: 2
        ethernets:
          eth0: {dhcp4: true}
    state: running

- name: A Fedora CoreOS guest configured by Ignition through fw_cfg
  kvmfleet.libvirt.domain:
    name: fcos01
    memory: 2GiB
    disks:
      - pool: default
        volume: fcos01.qcow2
        backing: fedora-coreos-qemu.qcow2
        size: 10GiB
    ignition:
      ignition: {version: 3.4.0}
      passwd:
        users:
          - name: core
            ssh_authorized_keys: ["ssh-ed25519 AAAA... admin@example"]
    state: running

- name: Anything else, through the escape hatch
  kvmfleet.libvirt.domain:
    name: web01
    xml_edits:
      - xpath: /domain/features
        fragment: <pae/>
      - xpath: /domain/clock/@offset
        value: localtime

- name: A guest with its UUID declared - renaming it here renames it in libvirt (once it is shut off)
  kvmfleet.libvirt.domain:
    name: web-frontend-01  # was web01
    uuid: 4dea22b3-1d52-d8f3-2516-782e98ab3fa0
    memory: 2GiB

- name: Remove the guest, keep its disks
  kvmfleet.libvirt.domain:
    name: web01
    state: absent
"""

RETURN = r"""
changed:
  description: Whether anything changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
created:
  description: Whether the guest was defined by this task.
  returned: unless state is absent
  type: bool
  sample: false
changes:
  description: Each change the task made (or would make), as C(field - before -> after).
  returned: unless state is absent
  type: list
  elements: str
  sample: ["current_memory: 2GiB -> 1GiB", "disk vdb: (none) -> present", "graphics vnc.password: <secret changed>"]
applied_live:
  description: Changes applied to the running guest without a restart.
  returned: unless state is absent
  type: list
  elements: str
  sample: ["attach disk vdb", "current_memory: 1GiB"]
reboot_required:
  description: Whether changes wait for the next boot of the running guest.
  returned: unless state is absent
  type: bool
  sample: false
reasons:
  description: The changes that wait for the next boot.
  returned: unless state is absent
  type: list
  elements: str
  sample: ["machine: pc-i440fx-7.2 -> pc-q35-7.2"]
actions:
  description: Rename, storage and power actions taken (rename, create volume, start, shutdown, restart, autostart).
  returned: unless state is absent
  type: list
  elements: str
  sample: ["rename web01 to web-frontend-01", "start"]
uuid:
  description: The guest's UUID (for a guest that check mode would create, O(uuid), or null when not given).
  returned: unless state is absent
  type: str
  sample: 6799c32a-781c-4cdf-94ac-4be95963fc49
adopted:
  description:
    - Whether this task took a guest the collection did not manage under management (another tool made it). Adopting
      adds the collection's marker to the guest's C(<metadata>) with C(virDomainSetMetadata), not a define, so the
      rest of its definition stays byte for byte as it was; a change to the guest itself is reported as usual.
  returned: unless state is absent
  type: bool
  sample: false
renamed_from:
  description:
    - The guest's old name, when the guest with O(uuid) was found under another name and renamed to O(name) (in check
      mode, would be).
  returned: when the guest was renamed
  type: str
  sample: web01
rename_pending:
  description:
    - The guest's current name, when the guest with O(uuid) was found under another name but runs, so libvirt cannot
      rename it yet; it was converged under that name, and the first run after it is shut off renames it.
  returned: when a rename waits for the guest to be shut off
  type: str
  sample: web01
state:
  description: Power state the guest is in after the task.
  returned: always
  type: str
  sample: running
interfaces:
  description: The guest's NICs with their MAC addresses.
  returned: unless state is absent
  type: list
  elements: dict
  sample: [{"mac": "52:54:00:3f:a2:19", "type": "network", "source": "default", "model": "virtio"}]
removed_volumes:
  description: Paths of disk volumes deleted with O(remove_storage=true).
  returned: when state is absent
  type: list
  elements: str
  sample: ["/var/lib/libvirt/images/web01.qcow2"]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.module import converge_domain
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(argument_spec(), converge_domain, lambda params: "guest %s" % params["name"])


if __name__ == "__main__":
    main()
