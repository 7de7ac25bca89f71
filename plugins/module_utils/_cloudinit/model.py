# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: cloud-init NoCloud seeds and Ignition configs. Pure: no libvirt calls.

``normalize_cloud_init`` checks and renders the ``cloud_init`` option (user-data, meta-data,
network-config, vendor-data) and computes its content hash; ``seed_files`` adds the instance-id
derived from the guest's UUID; ``build_seed_iso`` packs the files into a NoCloud ISO (volume label
``cidata``) with pycdlib, byte for byte the same for the same content. ``normalize_ignition``
does the same for an Ignition config passed through QEMU's fw_cfg.

The content hash covers what the user declared (not the ISO bytes, not the derived instance-id),
so it can be compared with the hash kept in the guest's metadata before any ISO is built.
"""

from __future__ import annotations

import hashlib
import io
import importlib
import json

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import POOL_NAME, VOLUME_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError


class MissingLibraryError(UserError):
    """A Python library the seed needs is not installed on the managed host."""

    code = "missing_library"


def _library(name):
    """Import PyYAML or pycdlib when cloud-init data is really rendered or built: guests without
    cloud-init (and every no-op run) do not pay for loading them."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingLibraryError("cloud-init needs the Python library %s on the managed host (it is in the "
                                  "collection's requirements.txt: pip install %s)"
                                  % (name, {"yaml": "PyYAML"}.get(name, name))) from None


CIDATA_LABEL = "cidata"
# The ISO's application identifier carries the content hash (its first 160 bits: Joliet allows 64
# characters), so a seed volume says what it holds (the cloud_init module compares it, having no
# guest metadata to keep the hash in).
APP_ID_PREFIX = "KVMFLEET-CIDATA "
APP_ID_HASH_LENGTH = len("sha256:") + 40
# Fixed timestamps: the same content gives the same ISO bytes (2000-01-01T00:00:00Z).
SEED_EPOCH = 946684800.0
IGNITION_FWCFG = "opt/com.coreos/config"

# First lines that make a user-data (or vendor-data) string a format cloud-init knows.
_USER_DATA_HEADERS = ("#cloud-config", "#!", "#include", "#cloud-boothook", "#part-handler", "## template: jinja",
                      "Content-Type:", "MIME-Version:")
_ACCEPTED_USER_DATA = ("expected a dict (rendered as #cloud-config), or a string that starts with one of: %s"
                       % ", ".join(_USER_DATA_HEADERS))
SEED_FILES = ("meta-data", "user-data", "network-config", "vendor-data")


def seed_content_options():
    """The seed's content options (argument spec), shared by the domain module's cloud_init option and the
    cloud_init module. User and vendor data may hold passwords and keys."""
    return {
        "user_data": {"type": "raw", "no_log": True},
        "meta_data": {"type": "dict"},
        "network_config": {"type": "raw"},
        "vendor_data": {"type": "raw", "no_log": True},
    }


def _hidden(text):
    """How a secret value is named in an error: never its content."""
    return "(hidden, %d characters)" % len(text) if isinstance(text, str) else "(hidden %s)" % type(text).__name__


def _yaml_problem(exc):
    """A YAML error without the snippet of the document PyYAML quotes (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    if mark is None:
        return problem
    return "%s at line %d, column %d" % (problem, mark.line + 1, mark.column + 1)


def _dump_yaml(data):
    return _library("yaml").safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True)


def render_user_data(value, option, secret=True):
    """The user-data (or vendor-data) file text: a dict as #cloud-config, a string checked and kept as it is."""
    if value is None:
        return None
    shown = _hidden(value) if secret else value
    if isinstance(value, dict):
        return "#cloud-config\n" + _dump_yaml(value)
    if not isinstance(value, str):
        raise SpecError(option, shown, _ACCEPTED_USER_DATA)
    first = value.lstrip().split("\n", 1)[0]
    if not any(first.startswith(h) for h in _USER_DATA_HEADERS):
        raise SpecError(option, shown, _ACCEPTED_USER_DATA)
    if first.startswith("#cloud-config"):
        yaml = _library("yaml")
        try:
            data = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise SpecError(option, shown, "a #cloud-config document must be valid YAML: %s" % _yaml_problem(exc)) \
                from None
        if data is not None and not isinstance(data, dict):
            raise SpecError(option, shown, "a #cloud-config document must be a YAML mapping (key: value), not a %s"
                            % type(data).__name__)
    return value if value.endswith("\n") else value + "\n"


def render_network_config(value, option):
    """network-config: a v2 (netplan-style) mapping, given as a dict or a YAML string."""
    if value is None:
        return None
    accepted = "expected network config version 2: a dict such as {version: 2, ethernets: {...}}"
    data = value
    if isinstance(value, str):
        yaml = _library("yaml")
        try:
            data = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise SpecError(option, value, "%s; the string is not valid YAML: %s" % (accepted, _yaml_problem(exc))) \
                from None
    if not isinstance(data, dict):
        raise SpecError(option, value, accepted)
    inner = data.get("network") if isinstance(data.get("network"), dict) and "version" not in data else data
    version = inner.get("version")
    if version is None or str(version) != "2":
        raise SpecError(option + ".version", version, accepted + " (version 1 and ENI are not accepted)")
    return _dump_yaml(data)


def render_meta_data(meta, option):
    """The declared meta-data as a dict with string keys; local-hostname and instance-id must be strings."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise SpecError(option, meta, "expected a dict such as {instance-id: ..., local-hostname: ...}")
    result = dict(meta)
    for key in ("instance-id", "local-hostname"):
        if key in result and (not isinstance(result[key], (str, int)) or isinstance(result[key], bool)
                              or str(result[key]).strip() == ""):
            raise SpecError("%s.%s" % (option, key), result[key], "expected a non-empty string")
        if key in result:
            result[key] = str(result[key])
    return result


def content_hash(parts):
    """sha256 over the rendered files in a fixed order; 'sha256:<hex>'."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        text = parts[name]
        if text is None:
            continue
        data = text.encode("utf-8") if isinstance(text, str) else text
        digest.update(("%s\0%d\0" % (name, len(data))).encode("ascii"))
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def short_hash(value):
    """'sha256:' and the first 12 hex digits: enough to see a change, too little to test guesses of a secret."""
    return None if value is None else value[:len("sha256:") + 12]


def instance_id_for(uuid):
    """A stable instance-id from the guest's UUID (it never changes for a guest)."""
    return "iid-" + uuid.lower()


def normalize_cloud_init(raw, option="cloud_init", guest_name=None, option_names=None):
    """The ``cloud_init`` option checked and rendered; raises SpecError naming the sub-option.

    Returns {'pool', 'volume', 'target', 'meta_data', 'user_data', 'network_config', 'vendor_data',
    'derive_instance_id', 'hash', 'options'}. user_data and vendor_data are never shown in errors.
    ``option_names`` names the options where they are not ``option.<key>`` (the cloud_init module's are
    top-level, and its volume is ``name``); the spec keeps them in ``options`` for later refusals.
    """
    if raw is None:
        return None
    keys = ("pool", "volume", "meta_data", "user_data", "network_config", "vendor_data", "target")
    names = {key: "%s.%s" % (option, key) for key in keys}
    names.update(option_names or {})
    if not isinstance(raw, dict):
        raise SpecError(option, raw, "expected a dict with pool and user_data, meta_data, network_config, vendor_data")
    _library("yaml")  # fail early, before anything is rendered, when PyYAML is missing
    if not raw.get("pool"):
        raise SpecError(names["pool"], raw.get("pool"), "the storage pool that holds the seed ISO volume is needed")
    meta = render_meta_data(raw.get("meta_data"), names["meta_data"])
    if guest_name is not None:
        meta.setdefault("local-hostname", guest_name)
    derive = "instance-id" not in meta
    spec = {
        "pool": raw["pool"],
        "volume": raw.get("volume") or ("%s-cidata.iso" % guest_name if guest_name else None),
        "target": raw.get("target"),
        "meta_data": meta,
        "user_data": render_user_data(raw.get("user_data"), names["user_data"]),
        "network_config": render_network_config(raw.get("network_config"), names["network_config"]),
        "vendor_data": render_user_data(raw.get("vendor_data"), names["vendor_data"]),
        "derive_instance_id": derive,
        "options": names,
    }
    if not spec["volume"]:
        raise SpecError(names["volume"], None, "the name of the seed ISO volume is needed")
    POOL_NAME.parse(spec["pool"], names["pool"])
    VOLUME_NAME.parse(spec["volume"], names["volume"])
    spec["hash"] = content_hash({
        "meta-data": _dump_yaml(meta) + ("instance-id: (from the guest UUID)\n" if derive else ""),
        "user-data": spec["user_data"] or "",
        "network-config": spec["network_config"],
        "vendor-data": spec["vendor_data"],
    })
    return spec


def seed_files(spec, instance_id=None):
    """{file name: bytes} for the seed; ``instance_id`` is used when the spec did not declare one."""
    meta = dict(spec["meta_data"])
    if spec["derive_instance_id"]:
        if not instance_id:
            raise ValueError("an instance-id is needed (the guest's UUID)")
        meta["instance-id"] = instance_id
    files = {"meta-data": _dump_yaml(meta), "user-data": spec["user_data"] or "#cloud-config\n{}\n"}
    for name, key in (("network-config", "network_config"), ("vendor-data", "vendor_data")):
        if spec[key] is not None:
            files[name] = spec[key]
    return {name: text.encode("utf-8") for name, text in files.items()}


# ---- the ISO ------------------------------------------------------------------------------------------

class _FixedClock:
    """Stands in for the ``time`` module inside pycdlib while it builds: every timestamp is SEED_EPOCH, in UTC."""

    def __init__(self, real):
        self._real = real

    def time(self):
        return SEED_EPOCH

    def localtime(self, seconds=None):
        return self._real.gmtime(SEED_EPOCH if seconds is None else seconds)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _with_fixed_clock(func):
    pycdlib = _library("pycdlib")
    names = ("dates", "headervd", "pycdlib", "utils", "rockridge", "inode", "dr")
    modules = [m for m in (getattr(pycdlib, n, None) for n in names) if m is not None and getattr(m, "time", None)]
    saved = [(m, m.time) for m in modules]
    try:
        for module, real in saved:
            module.time = _FixedClock(real)
        return func()
    finally:
        for module, real in saved:
            module.time = real


def build_seed_iso(files, hash_value, label=CIDATA_LABEL):
    """The NoCloud seed ISO as bytes: ISO9660 with Joliet and Rock Ridge (long, lower-case names).

    Deterministic: fixed timestamps, files in sorted order; the application identifier carries the
    content hash.
    """
    pycdlib = _library("pycdlib")

    def build():
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label,
                sys_ident="LINUX", app_ident_str=APP_ID_PREFIX + hash_value[:APP_ID_HASH_LENGTH], preparer_ident_str="kvmfleet.libvirt")
        for name in sorted(files):
            data = files[name]
            iso_name = "/%s.;1" % name.upper().replace("-", "_")[:30]
            iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
        return out.getvalue()

    return _with_fixed_clock(build)


PVD_OFFSET = 16 * 2048  # the primary volume descriptor, in the first sector after the system area
PVD_LENGTH = 2048


def parse_pvd(block):
    """(volume label, content hash prefix or None) from the 2048 bytes of an ISO's primary volume
    descriptor; (None, None) when they are not one. Compare the prefix with ``same_seed_hash``."""
    if len(block) < 1024 or block[0:1] != b"\x01" or block[1:6] != b"CD001":
        return None, None
    label = block[40:72].decode("ascii", "replace").rstrip()
    app = block[574:702].decode("ascii", "replace").rstrip()
    return label, (app[len(APP_ID_PREFIX):] if app.startswith(APP_ID_PREFIX) else None)


def same_seed_hash(stored, hash_value):
    """Whether the hash prefix an ISO carries is that of ``hash_value``."""
    return bool(stored) and stored == hash_value[:APP_ID_HASH_LENGTH]


# ---- Ignition ----------------------------------------------------------------------------------------

def normalize_ignition(value, option="ignition"):
    """An Ignition config (dict, or a JSON string) -> (canonical JSON text, 'sha256:<hex>').

    The config is passed to CoreOS-family guests unchanged through fw_cfg; it must be a JSON object
    with ignition.version. It may hold secrets, so it is never shown in errors.
    """
    if value is None:
        return None
    accepted = "expected an Ignition config: a dict or a JSON object string with ignition.version"
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise SpecError(option, _hidden(value), "%s; the string is not JSON: %s at line %d, column %d"
                            % (accepted, exc.msg, exc.lineno, exc.colno)) from None
    if not isinstance(data, dict):
        raise SpecError(option, _hidden(value), accepted)
    if not isinstance(data.get("ignition"), dict) or not data["ignition"].get("version"):
        raise SpecError(option + ".ignition.version", (data.get("ignition") or {}).get("version")
                        if isinstance(data.get("ignition"), dict) else None, accepted)
    text = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
    return text, "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
