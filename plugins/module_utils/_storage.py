# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: storage helpers shared by the ``pool``, ``volume`` and ``domain`` modules.

Volume XML, pool and volume lookups with helpful errors, the permission codecs (mode, owner,
group), image format sniffing, checksums, and the one place that streams a file into a volume.
"""

from __future__ import annotations

import grp
import hashlib
import io
import os
import pwd
import re
import struct
from urllib.parse import urlsplit

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Codec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import each_domain, libvirt, lookup_or_none
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string

POOL_SCHEMA = "storagepool.rng"  # in _xml.SCHEMA_DIR
VOLUME_SCHEMA = "storagevol.rng"

# Pool types whose volumes are files in a directory (qcow2 is possible, permissions are file modes).
FILE_POOL_TYPES = ("dir", "fs", "netfs")

CHUNK = 1024 * 1024  # bytes per read when hashing or streaming a file


# ---- permissions: mode, owner, group --------------------------------------------------------------

class Mode(Codec):
    """A file mode: '0755' / '755' (octal digits), or an int (YAML's 0755 is already the number)."""

    _RE = re.compile(r"^0?[0-7]{3,4}$")
    argtype = "raw"  # '0750' or 0750

    def parse(self, value, option):
        if value is None:
            return None
        accepted = "expected an octal mode such as '0750' (quote it in YAML) or 0750"
        if isinstance(value, bool):
            raise SpecError(option, value, accepted)
        if isinstance(value, int):
            if not 0 <= value <= 0o7777:
                raise SpecError(option, value, accepted)
            return value
        text = str(value).strip()
        if not self._RE.match(text):
            raise SpecError(option, value, accepted)
        return int(text, 8)

    def load(self, text):
        try:
            return None if text is None else int(text, 8)
        except ValueError:
            return text

    def dump(self, value):
        return "%04o" % value

    def show(self, value):
        return None if value is None else "%04o" % value


class Account(Codec):
    """A uid or gid: a number, or a user/group name resolved on the host the module runs on."""

    argtype = "raw"  # a name or a number

    def __init__(self, kind):
        self.kind = kind  # 'user' or 'group'

    def resolve(self, name):
        if self.kind == "user":
            return pwd.getpwnam(name).pw_uid
        return grp.getgrnam(name).gr_gid

    def parse(self, value, option):
        if value is None:
            return None
        if isinstance(value, bool):
            raise SpecError(option, value, "expected a %s name or a numeric id" % self.kind)
        if isinstance(value, int) or str(value).strip().isdigit():
            number = int(value)
            if number < 0 or number > 0xFFFFFFFE:
                raise SpecError(option, value, "expected a %s name or a numeric id" % self.kind)
            return number
        try:
            return self.resolve(str(value).strip())
        except KeyError:
            raise SpecError(option, value, "no such %s on the managed host; give a %s name that exists there or a "
                                           "numeric id" % (self.kind, self.kind)) from None

    def load(self, text):
        try:
            return None if text is None else int(text)
        except ValueError:
            return text

    def dump(self, value):
        return str(int(value))


PERMISSION_CODECS = {"mode": Mode(), "owner": Account("user"), "group": Account("group")}
PERMISSION_KEYS = tuple(PERMISSION_CODECS)  # a pool directory's or a volume file's mode, owner and group


def parse_permissions(params):
    """{'mode', 'owner', 'group'} from module parameters, normalised (None where not declared)."""
    return {key: codec.parse(params.get(key), key) for key, codec in PERMISSION_CODECS.items()}


# ---- volume XML -------------------------------------------------------------------------------------

def volume_xml(name, capacity, fmt=None, backing=None, permissions=None, allocation=0):
    """A ``<volume>`` document for createXML/createXMLFrom.

    ``backing`` is (path, format) of a base image for a thin overlay; ``permissions`` a dict with
    any of mode, owner, group (normalised ints).
    """
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = name
    etree.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity))
    if allocation is not None:
        etree.SubElement(vol, "allocation", unit="bytes").text = str(int(allocation))
    target = etree.SubElement(vol, "target")
    if fmt:
        etree.SubElement(target, "format", type=fmt)
    perms = {k: v for k, v in (permissions or {}).items() if v is not None}
    if perms:
        elem = etree.SubElement(target, "permissions")
        for key in ("mode", "owner", "group"):
            if key in perms:
                etree.SubElement(elem, key).text = PERMISSION_CODECS[key].dump(perms[key])
    if backing:
        store = etree.SubElement(vol, "backingStore")
        etree.SubElement(store, "path").text = backing[0]
        etree.SubElement(store, "format", type=backing[1])
    return to_string(vol)


# ---- schema -----------------------------------------------------------------------------------------

# The schema check for every document kind is _xml.validate_schema.


# ---- lookups ------------------------------------------------------------------------------------------

def names_of(items):
    return ", ".join(sorted(i.name() for i in items)) or "(none)"


def lookup_pool(conn, name, option="pool"):
    """The pool named ``name``; a SpecError naming the existing pools if there is none."""
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        raise SpecError(option, name, "no storage pool has that name; existing pools: %s"
                        % names_of(conn.listAllStoragePools(0))) from None


def find_pool(conn, name):
    """The pool named ``name`` or None."""
    return lookup_or_none(conn.storagePoolLookupByName, name, "VIR_ERR_NO_STORAGE_POOL")


def pool_for_path(conn, path):
    """The pool whose target directory holds ``path``, or None."""
    directory = os.path.dirname(path)
    for pool in conn.listAllStoragePools(0):
        if parse_xml(pool.XMLDesc(0)).findtext("target/path") == directory:
            return pool
    return None


def volume_by_reference(conn, pool, reference, option):
    """A volume by name in ``pool``, or by absolute path in any pool; a SpecError naming ``option`` if none."""
    try:
        if reference.startswith("/"):
            return conn.storageVolLookupByPath(reference)
        return pool.storageVolLookupByName(reference)
    except libvirt.libvirtError:
        if reference.startswith("/"):
            raise SpecError(option, reference, "no volume of any storage pool has that path (a file copied into a "
                                               "pool's directory shows up after a refresh of the pool)") from None
        names = ", ".join(sorted(v.name() for v in pool.listAllVolumes(0) or [])) or "(none)"
        raise SpecError(option, reference, "pool %s has no volume of that name; its volumes: %s"
                        % (pool.name(), names)) from None


def volume_document(vol):
    """A volume's XML; a volume that vanishes between its lookup and this read (another run is making or removing it
    at this moment: libvirt then says 'no storage vol with matching path') is a conflict naming it, not a lookup
    error."""
    try:
        return vol.XMLDesc(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise
        raise UserError("volume %s was being made or removed by another writer while this run read it, so nothing "
                        "was changed. Run again: the next run finds it as it is then (libvirt: %s)" % (vol.name(), exc),
                        code="conflict", cause=exc) from None


def pools_short_of_space(conn, paths, need=0):
    """[(pool name, bytes free)] of the pools holding ``paths`` (volumes' files) with less than ``need`` bytes free, or
    less than 1 MiB when ``need`` is 0."""
    short = []
    for path in paths:
        try:
            pool = conn.storageVolLookupByPath(path).storagePoolLookupByVolume()
            pool.refresh(0)
            free = pool.info()[3]
        except libvirt.libvirtError:
            continue
        if free < max(need, 2 ** 20) and (pool.name(), free) not in short:
            short.append((pool.name(), free))
    return short


def find_volume(pool, name):
    """The volume ``name`` of an active pool, or None (also for an inactive pool)."""
    if not pool.isActive():
        return None
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return None


# ---- half-made volumes: a marker next to a volume while its content is written ---------------------------

PARTIAL_SUFFIX = ".kvmfleet-partial"


def half_made(pool, name):
    """Whether volume ``name`` of the active ``pool`` is one a run of this collection began to fill and did not finish
    (killed between the create and the last byte): its marker, an empty volume ``<name>.kvmfleet-partial``, is there.
    Such a volume is ours and holds nothing anyone else wrote, so a later run replaces it."""
    return find_volume(pool, name + PARTIAL_SUFFIX) is not None


class Filling:
    """The marker of a volume being filled (an import, a clone, a seed): ``begin`` makes it before the volume is
    created, ``done`` removes it once the content is complete, or once a failed fill took the volume back. A run killed
    in between leaves the marker, and the next run knows the volume for its own half-made one."""

    def __init__(self, pool, name):
        self.pool, self.name = pool, name

    def begin(self):
        if not half_made(self.pool, self.name):
            self.pool.createXML(volume_xml(self.name + PARTIAL_SUFFIX, 0, "raw"), 0)

    def done(self):
        """Remove the marker, unless the volume is still there after a failure (then it stays marked)."""
        marker = find_volume(self.pool, self.name + PARTIAL_SUFFIX)
        if marker is not None:
            marker.delete(0)

    def failed(self):
        if find_volume(self.pool, self.name) is None:
            self.done()


def disk_uses_volume(domain_xml, path, pool_name=None, vol_name=None):
    """Whether a guest's XML has a disk on this volume: by path (file or block), or by pool and name."""
    for source in parse_xml(domain_xml).iterfind("devices/disk/source"):
        if path in (source.get("file"), source.get("dev")) or (
                pool_name and (source.get("pool"), source.get("volume")) == (pool_name, vol_name)):
            return True
    return False


def guests_using_volume(conn, path, pool_name=None, vol_name=None, exclude=(), active_only=False):
    """Names of guests with a disk on this volume, in their persistent config or while they run
    (``active_only``: running guests only, as they run now). Guests named in ``exclude`` are skipped."""
    flags = libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE if active_only else 0

    def uses(dom):
        if dom.name() in exclude:
            return None
        documents = []
        if dom.isActive():
            documents.append(dom.XMLDesc(0))
        if not active_only and dom.isPersistent():
            documents.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        return dom.name() if any(disk_uses_volume(xml, path, pool_name, vol_name) for xml in documents) else None
    return sorted(name for name in each_domain(conn, flags, uses) if name)


def pool_type(pool):
    return parse_xml(pool.XMLDesc(0)).get("type")


def is_local_uri(uri):
    """Whether a libvirt URI names the daemon on this host (so its files are this host's files)."""
    host = urlsplit(uri).hostname
    return host in (None, "", "localhost", "127.0.0.1", "::1")


# ---- image files: format and checksum ---------------------------------------------------------------

# Magic bytes of image formats libvirt would detect in an imported file (offset, magic, format).
_MAGIC = ((0, b"QFI\xfb", "qcow2"), (0, b"KDMV", "vmdk"), (0, b"vhdxfile", "vhdx"), (0, b"QED\x00", "qed"),
          (0, b"conectix", "vpc"), (0x40, b"\x7f\x10\xda\xbe", "vdi"))


def sniff_image(path):
    """(format, virtual size) of an image file: 'qcow2' with the size from its header, else 'raw' and
    the file size; another format libvirt knows (vmdk, vdi, ...) by its name with size None."""
    with open(path, "rb") as handle:
        head = handle.read(0x48)
        size = os.fstat(handle.fileno()).st_size
    for offset, magic, fmt in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if fmt == "qcow2" and len(head) >= 32:
                return fmt, struct.unpack(">Q", head[24:32])[0]
            return fmt, None
    return "raw", size


_CHECKSUM_RE = re.compile(r"^([A-Za-z0-9_]+):([0-9a-fA-F]+)$")


def parse_checksum(value, option="checksum"):
    """('sha256', '<hex>') from 'sha256:<hex>'; the algorithm must be one hashlib always has."""
    if value is None:
        return None
    algorithms = sorted(a for a in hashlib.algorithms_guaranteed if not a.startswith("shake_"))
    accepted = "expected ALGORITHM:HEX, for example sha256:<64 hex digits>; algorithms: %s" % ", ".join(algorithms)
    match = _CHECKSUM_RE.match(str(value).strip())
    if not match or match.group(1).lower() not in algorithms:
        raise SpecError(option, value, accepted)
    algorithm, digest = match.group(1).lower(), match.group(2).lower()
    if len(digest) != hashlib.new(algorithm).digest_size * 2:
        raise SpecError(option, value, "a %s digest has %d hex digits" % (algorithm, hashlib.new(algorithm).digest_size * 2))
    return algorithm, digest


def file_digest(path, algorithm):
    """Hex digest of a file, read in chunks."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            hasher.update(block)
    return hasher.hexdigest()


# ---- streams ------------------------------------------------------------------------------------------

def read_volume(conn, vol, offset, length):
    """Up to ``length`` bytes of a volume from ``offset``, read through a libvirt stream."""
    stream = conn.newStream(0)
    chunks, received = [], 0
    try:
        vol.download(stream, offset, length, 0)
        while received < length:
            data = stream.recv(min(length - received, CHUNK))
            if not data or isinstance(data, int):  # end of stream, or -2 (would block)
                break
            chunks.append(data)
            received += len(data)
        stream.finish()
    except BaseException:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        raise
    return b"".join(chunks)


def upload_file(conn, vol, path):
    """Write a local file into a volume through a libvirt stream, a chunk at a time."""
    with open(path, "rb") as handle:
        upload_stream(conn, vol, handle, os.path.getsize(path))


def upload_data(conn, vol, data):
    """Write ``data`` (bytes) into a volume from its start."""
    upload_stream(conn, vol, io.BytesIO(data), len(data))


def upload_stream(conn, vol, handle, length):
    """Stream ``length`` bytes of ``handle`` into the volume, then read its last chunk back: libvirt can finish a
    stream whose bytes never reached the disk (a small upload into a full filesystem ends without an error and leaves
    zeros), so what was written is checked, not assumed."""
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, length, 0)
        stream.sendAll(lambda _stream, nbytes, fh: fh.read(min(nbytes, CHUNK)), handle)
        stream.finish()
    except BaseException:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        raise
    tail = min(length, CHUNK)
    handle.seek(length - tail)
    if tail and read_volume(conn, vol, length - tail, tail) != handle.read(tail):
        pool = vol.storagePoolLookupByVolume()
        free = pool.info()[3]
        why = "No space left on device: pool %s has %d bytes free" % (pool.name(), free) if free < length else \
            "libvirt reported no error"
        raise UserError("the upload into volume %s did not reach its disk (its last %d bytes are not what was sent): "
                        "%s" % (vol.path(), tail, why), code="file_error")
