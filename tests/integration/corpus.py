"""A corpus of guest definitions made by tools nobody here wrote, for the adoption test (test_adopt_corpus.py).

- ``virt-install --print-xml`` (Debian's virtinst) over operating systems and options: firmware, TPM, disks on
  every bus, cdroms, shares, NIC kinds, displays, sound, channels, serial and console variants, boot variants,
  CPU and memory tuning;
- guests as virt-manager makes them (virtinst with virt-manager's defaults: SPICE, QXL, USB redirection, ...);
- hand-written XML (``corpus/*.xml``) with what the friendly spec does not model: ``<qemu:commandline>``,
  custom controllers, input devices, smartcard, redirdev, iommu, vsock, panic, shmem, memballoon options, memory
  backing, cputune/numatune, blkiotune, sysinfo, resource partitions, seclabels, NICs of every kind, and a
  definition virt-install can leave behind that fails libvirt's schema (relative firmware and disk paths);
- the definitions libvirt itself wrote for the unit tests' fixtures.

virt-install creates what a definition needs as it prints it: the disk images (here in the test's pool) and a
storage pool for each directory it touches. ``build`` removes the pools it made.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt

from harness import REPO

HAND = Path(__file__).parent / "corpus"
FIXTURES = REPO / "tests" / "unit" / "plugins" / "module_utils" / "fixtures"

# (label, virt-install options). Every definition also gets --name, --memory, --disk (unless it says), --network
# (unless it says), --virt-type qemu, --import, --print-xml.
OSES = ["debian11", "ubuntu22.04", "fedora-coreos-stable", "centos-stream9", "rhel9.0", "almalinux9", "opensuse15.4",
        "archlinux", "alpinelinux3.17", "nixos-unstable", "freebsd13.1", "netbsd9.0", "openbsd7.0", "solaris11",
        "win10", "win11", "win2k19", "win2k22", "generic"]
OPTIONS = [
    ("uefi", ["--osinfo", "debian11", "--boot", "uefi"]),
    ("uefi-secure-boot", ["--osinfo", "debian11", "--boot",
                          "uefi,firmware.feature0.name=secure-boot,firmware.feature0.enabled=yes"]),
    ("tpm", ["--osinfo", "win11", "--tpm", "emulator"]),
    ("disks-every-bus", ["--osinfo", "debian11", "--controller", "type=scsi,model=virtio-scsi",
                         "--disk", "{pool}/{name}-b.qcow2,size=0.01,bus=sata",
                         "--disk", "{pool}/{name}-c.qcow2,size=0.01,bus=scsi",
                         "--disk", "{pool}/{name}-d.raw,size=0.01,format=raw,bus=usb",
                         "--disk", "{pool}/{name}-e.qcow2,size=0.01,bus=virtio,cache=none,io=native,discard=unmap"]),
    ("cdrom", ["--osinfo", "debian11", "--disk", "device=cdrom,bus=sata"]),
    ("share-virtiofs", ["--osinfo", "debian11", "--filesystem", "source=/srv,target=share,driver.type=virtiofs",
                        "--memorybacking", "access.mode=shared,source.type=memfd"]),
    ("share-9p", ["--osinfo", "debian11", "--filesystem", "/srv,share9p"]),
    ("nic-user", ["--osinfo", "debian11", "--network", "user", "NONET"]),
    ("nic-bridge", ["--osinfo", "debian11", "--network", "bridge=br-corpus,model=e1000e", "NONET"]),
    ("nic-direct", ["--osinfo", "debian11", "--network", "type=direct,source=eth0,source.mode=bridge", "NONET"]),
    ("nic-two", ["--osinfo", "debian11", "--network", "network={net},mac=52:54:00:c1:00:01",
                 "--network", "network={net},model=rtl8139"]),
    ("nic-none", ["--osinfo", "debian11", "--network", "none", "NONET"]),
    ("vnc-listen", ["--osinfo", "debian11", "--graphics", "vnc,listen=127.0.0.1,port=5977"]),
    ("vnc-password", ["--osinfo", "debian11", "--graphics", "vnc,password=corpus"]),
    ("spice-qxl", ["--osinfo", "debian11", "--graphics", "spice", "--video", "qxl", "--channel", "spicevmc"]),
    ("sdl", ["--osinfo", "debian11", "--graphics", "sdl"]),
    ("egl-headless", ["--osinfo", "debian11", "--graphics", "egl-headless", "--graphics", "vnc"]),
    ("headless", ["--osinfo", "debian11", "--graphics", "none"]),
    ("sound-audio", ["--osinfo", "debian11", "--sound", "ich9", "--audio", "type=none"]),
    ("guest-agent-channel", ["--osinfo", "debian11", "--channel",
                             "unix,target.type=virtio,name=org.qemu.guest_agent.0"]),
    ("rng-watchdog", ["--osinfo", "debian11", "--rng", "/dev/urandom", "--watchdog", "i6300esb,action=reset"]),
    ("serial-tcp", ["--osinfo", "debian11", "--serial", "tcp,host=127.0.0.1:4555,mode=bind,protocol.type=telnet"]),
    ("serial-file-console-virtio", ["--osinfo", "debian11", "--serial", "file,path=/var/log/corpus-serial.log",
                                    "--console", "pty,target.type=virtio"]),
    ("boot-kernel", ["--osinfo", "debian11", "--boot",
                     "kernel={pool}/vmlinuz,initrd={pool}/initrd.img,kernel_args=console=ttyS0"]),
    ("boot-menu", ["--osinfo", "debian11", "--boot", "hd,cdrom,menu=on"]),
    ("input-keyboard-tablet", ["--osinfo", "debian11", "--input", "keyboard,bus=usb", "--input", "tablet"]),
    ("cpu-passthrough-topology", ["--osinfo", "debian11", "--cpu", "host-passthrough",
                                  "--vcpus", "4,sockets=1,cores=2,threads=2"]),
    ("cpu-model-feature", ["--osinfo", "debian11", "--cpu", "qemu64,+x2apic"]),
    ("tuning", ["--osinfo", "debian11", "--numatune", "0", "--cputune", "vcpupin0.vcpu=0,vcpupin0.cpuset=0",
                "--memory", "512,maxmemory=1024", "--memtune", "hard_limit=1048576", "--blkiotune", "weight=500"]),
    ("clock-events-features", ["--osinfo", "debian11", "--clock", "offset=localtime", "--events", "on_crash=restart",
                               "--features", "kvm_hidden=on"]),
    ("machine-pc", ["--osinfo", "debian11", "--machine", "pc"]),
    ("memballoon-none", ["--osinfo", "debian11", "--memballoon", "none"]),
    ("smartcard-redirdev", ["--osinfo", "debian11", "--smartcard", "passthrough,type=spicevmc",
                            "--redirdev", "usb,type=spicevmc"]),
    ("iommu-vsock-panic", ["--osinfo", "debian11", "--iommu", "model=intel", "--features", "ioapic.driver=qemu",
                           "--vsock", "cid.auto=yes", "--panic", "default"]),
    ("shmem-sysinfo", ["--osinfo", "debian11", "--shmem", "name=sh1,model.type=ivshmem-plain,size=4,size.unit=M",
                       "--sysinfo", "system.manufacturer=Corp,system.product=Prod"]),
    ("resource-seclabel", ["--osinfo", "debian11", "--resource", "partition=/machine",
                           "--seclabel", "type=dynamic,model=dac"]),
    ("qemu-commandline", ["--osinfo", "debian11", "--qemu-commandline=-fw_cfg name=opt/corpus,string=1"]),
    # virt-manager's new-VM defaults (virt-manager builds its guests with virtinst)
    ("virt-manager-linux", ["--osinfo", "fedora-coreos-stable", "--graphics", "spice", "--video", "virtio",
                            "--channel", "spicevmc", "--redirdev", "usb,type=spicevmc",
                            "--redirdev", "usb,type=spicevmc", "--sound", "ich9", "--controller", "usb,model=qemu-xhci"]),
    ("virt-manager-windows", ["--osinfo", "win10", "--boot", "uefi", "--tpm", "emulator", "--graphics", "spice",
                              "--video", "qxl", "--channel", "spicevmc", "--redirdev", "usb,type=spicevmc",
                              "--sound", "ich9", "--disk", "device=cdrom,bus=sata"]),
]


def _virt_install(label, options, name, pool_dir, network):
    argv = ["virt-install", "--connect", "qemu:///system", "--print-xml", "--name", name, "--memory", "256",
            "--virt-type", "qemu", "--import", "--noautoconsole",
            "--disk", "%s/%s.qcow2,size=0.01,format=qcow2" % (pool_dir, name)]
    if "NONET" not in options:
        argv += ["--network", "network=%s" % network]
    argv += [o.format(pool=pool_dir, name=name, net=network) for o in options if o != "NONET"]
    for _attempt in range(20):  # virt-install makes the disk images; the pool takes one volume job at a time
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if "has asynchronous jobs running" not in proc.stderr:
            break
        time.sleep(0.3)
    if proc.returncode != 0:
        return label, name, None, "virt-install: " + proc.stderr.strip().splitlines()[-1]
    return label, name, proc.stdout, None


def _hand(label, text, name, pool_dir):
    return label, name, text.replace("POOLDIR", str(pool_dir)).replace("NAME", name), None


def _fixture(label, path, name):
    from lxml import etree  # pylint: disable=import-outside-toplevel
    root = etree.fromstring(path.read_bytes())
    root.find("name").text = name
    root.find("uuid").text = str(uuid.uuid4())
    metadata = root.find("metadata")
    if metadata is not None:
        for node in list(metadata):
            if "kvmfleet" in (node.tag or ""):
                metadata.remove(node)
    return label, name, etree.tostring(root, encoding="unicode"), None


def build(conn, prefix, pool_dir, network):
    """[(label, guest name, XML or None, why there is none)]: the corpus, each under a name with ``prefix``."""
    pools_before = {p.name() for p in conn.listAllStoragePools(0)}
    jobs = [("virt-install %s" % os_id, ["--osinfo", os_id]) for os_id in OSES] + \
        [("virt-install %s" % label, options) for label, options in OPTIONS]
    entries = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_virt_install, label, options, "%sv%02d" % (prefix, n), pool_dir, network)
                   for n, (label, options) in enumerate(jobs)]
        entries = [f.result() for f in futures]
    for n, path in enumerate(sorted(HAND.glob("*.xml"))):
        entries.append(_hand("hand-written %s" % path.stem, path.read_text(), "%sh%02d" % (prefix, n), pool_dir))
    for n, path in enumerate(sorted(FIXTURES.glob("domain-*.xml"))):
        entries.append(_fixture("libvirt-written %s" % path.stem, path, "%sf%02d" % (prefix, n)))
    for pool in conn.listAllStoragePools(0):  # what virt-install made for directories it touched
        if pool.name() not in pools_before:
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    return entries


def define_all(conn, entries):
    """Define each definition as virt-install does (without asking libvirt to validate it): ({label: (name, the
    inactive XML libvirt keeps)}, {label: why libvirt refused it})."""
    defined, refused = {}, {}
    for label, name, xml, why in entries:
        if xml is None:
            refused[label] = why
            continue
        try:
            dom = conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            refused[label] = "libvirt: %s" % exc
            continue
        defined[label] = (name, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return defined, refused
