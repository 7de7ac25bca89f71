"""A guest's declared UUID (the ``uuid`` option), against libvirt's in-process test driver (test:///default).

The UUID is the guest's identity beside its name: normalised from any form libvirt takes, written into a new
guest, refused when the guest of that name has another, and what keeps a guest renamed in its description the
same guest - renamed in libvirt when it is shut off, converged under its old name (with a warning) while it runs,
and never removed by ``state: absent`` under a name it does not have.
"""

from __future__ import annotations

import copy
import uuid

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import spec as domain_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext, gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.identity import (
    ELSEWHERE,
    KEEP,
    PENDING,
    RENAME,
    guest_identity,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml
from testdriver import converge_described, module_params

CANONICAL = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
# Every form libvirt's own parser (virUUIDParse) takes, and some it refuses: checked against libvirt below.
GOOD = [CANONICAL, CANONICAL.upper(), "4dea22b31d52d8f32516782e98ab3fa0", "  %s\n" % CANONICAL,
        "4d ea 22 b3 1d 52 d8 f3 25 16 78 2e 98 ab 3f a0", "-4dea22b3-1d52-d8f3-2516--782e98ab3fa0"]
BAD = ["", "not-a-uuid", CANONICAL[:-1], CANONICAL + "0", "{%s}" % CANONICAL, "urn:uuid:" + CANONICAL,
       CANONICAL + "-", "4-dea22b31d52d8f32516782e98ab3fa0", "4dea22b3-1d52-d8f3-2516-782e98ab3fag"]


def params(name, **extra):
    """A guest's description as AnsibleModule hands it over (defaults filled in)."""
    return module_params(domain_spec.argument_spec(), **dict(dict(name=name, virt_type="qemu"), **extra))


def converge(conn, check=False, host=None, **extra):
    return converge_described(conn, check, host, **extra)


def effect(result):
    keys = ("changed", "diff", "actions", "changes", "created", "uuid", "renamed_from", "rename_pending", "warnings")
    return {key: result.get(key) for key in keys}


def unique():
    return "u-" + uuid.uuid4().hex[:8], str(uuid.uuid4())


def names(conn):
    return {d.name() for d in conn.listAllDomains(0)}


def config(conn, name):
    return conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


# ---- the value ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", GOOD)
def test_any_form_libvirt_takes_is_normalised_to_libvirt_s_own(conn, form):
    assert normalize_guest(params("g", uuid=form), gather_host(conn))["uuid"] == CANONICAL
    with pytest.raises(libvirt.libvirtError) as info:  # libvirt's parser takes it too: not an invalid argument
        conn.lookupByUUIDString(form.replace(CANONICAL[:8], "0badc0de"))
    assert info.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN


@pytest.mark.parametrize("form", BAD)
def test_a_bad_uuid_names_the_option_and_what_is_accepted(conn, form):
    for state in ("present", "absent"):
        with pytest.raises(SpecError) as info:
            normalize_guest(params("g", uuid=form, state=state), gather_host(conn))
        assert info.value.option == "uuid" and info.value.code == "invalid_option"
        assert "expected a UUID: 32 hexadecimal digits" in str(info.value)
    with pytest.raises(libvirt.libvirtError) as info:  # libvirt refuses it as well
        conn.lookupByUUIDString(form)
    assert info.value.get_error_code() == libvirt.VIR_ERR_INVALID_ARG


def test_without_a_uuid_the_spec_says_none():
    assert normalize_guest(params("g"), HostContext())["uuid"] is None
    assert normalize_guest(params("g", state="absent"), HostContext())["uuid"] is None


# ---- which guest a description means: pure -------------------------------------------------------------

def test_identity_rules():
    spec = {"name": "new", "state": "present", "uuid": CANONICAL}
    assert guest_identity(dict(spec, uuid=None), CANONICAL, None) == (KEEP, None), "no uuid: as before"
    assert guest_identity(spec, CANONICAL.upper(), None) == (KEEP, None)
    assert guest_identity(spec, None, None) == (KEEP, None), "a new guest"
    assert guest_identity(spec, None, ("old", False)) == (RENAME, "old")
    assert guest_identity(spec, None, ("old", True)) == (PENDING, "old")
    assert guest_identity(dict(spec, state="absent"), None, ("old", False)) == (ELSEWHERE, "old")
    for state in ("present", "absent"):
        with pytest.raises(SpecError) as info:
            guest_identity(dict(spec, state=state), "0BADC0DE-1d52-d8f3-2516-782e98ab3fa0", None)
        assert info.value.option == "uuid"
        assert "guest new exists with UUID 0badc0de-1d52-d8f3-2516-782e98ab3fa0" in str(info.value)
        assert "a guest's UUID cannot change" in str(info.value) and "give it a different name" in str(info.value)


# ---- against the test driver ------------------------------------------------------------------------------

def test_a_new_guest_is_defined_with_the_declared_uuid(conn):
    name, guest_uuid = unique()
    predicted = converge(conn, True, name=name, memory="128MiB", uuid=guest_uuid.upper())
    assert predicted["created"] and predicted["uuid"] == guest_uuid, "check mode returns the UUID it would define"
    assert name not in names(conn)
    made = converge(conn, name=name, memory="128MiB", uuid=guest_uuid.upper())
    assert effect(made) == effect(predicted)
    assert conn.lookupByName(name).UUIDString() == guest_uuid
    assert parse_xml(config(conn, name)).findtext("uuid") == guest_uuid
    before = config(conn, name)
    again = converge(conn, name=name, memory="128MiB", uuid=guest_uuid.replace("-", ""))
    assert not again["changed"] and again["actions"] == [] and config(conn, name) == before


def test_the_declared_uuid_wins_over_the_one_in_the_xml_option(conn):
    name, guest_uuid = unique()
    xml = "<domain type='qemu'><name>x</name><uuid>%s</uuid><memory>131072</memory><os><type>hvm</type></os></domain>" \
        % uuid.uuid4()
    converge(conn, name=name, xml=xml, uuid=guest_uuid)
    assert conn.lookupByName(name).UUIDString() == guest_uuid


def test_without_a_uuid_an_existing_guest_is_left_as_it_is(conn):
    name, _unused = unique()
    made = converge(conn, name=name, memory="128MiB")
    libvirt_uuid = conn.lookupByName(name).UUIDString()
    assert made["uuid"] == libvirt_uuid
    before = config(conn, name)
    assert not converge(conn, name=name, memory="128MiB")["changed"]
    assert not converge(conn, name=name, memory="128MiB", uuid=libvirt_uuid.upper())["changed"]
    assert config(conn, name) == before


def test_a_guest_of_that_name_with_another_uuid_is_refused_before_any_change(conn):
    name, _unused = unique()
    converge(conn, name=name, memory="128MiB")
    actual = conn.lookupByName(name).UUIDString()
    before = config(conn, name)
    for check in (True, False):
        for state in ("present", "absent"):
            with pytest.raises(SpecError) as info:
                converge(conn, check, name=name, memory="256MiB", uuid=CANONICAL, state=state)
            assert info.value.option == "uuid" and info.value.code == "invalid_option"
            assert "guest %s exists with UUID %s" % (name, actual) in str(info.value)
            assert "cannot change" in str(info.value)
    assert config(conn, name) == before


def test_a_shut_off_guest_renamed_in_its_description_is_renamed(conn):
    old, guest_uuid = unique()
    new = old + "-renamed"
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid, tags={"role": "web"})
    original = config(conn, old)
    desc = dict(name=new, memory="192MiB", uuid=guest_uuid, tags={"role": "web"})

    host = gather_host(conn)
    predicted = converge(conn, True, host=host, **copy.deepcopy(desc))
    assert old in names(conn) and new not in names(conn), "check mode renamed the guest"
    assert config(conn, old) == original
    assert predicted["changed"] and not predicted["created"]
    assert predicted["actions"] == ["rename %s to %s" % (old, new)] and predicted["renamed_from"] == old
    assert predicted["changes"] == ["memory: 128MiB -> 192MiB", "current_memory: 128MiB -> 192MiB"]
    assert "<name>%s</name>" % old in predicted["diff"]["before"] and "<name>%s</name>" % new in predicted["diff"]["after"]
    # check mode's host context predicts the host after the run: the guest under its new name only
    assert host.current_xml(old) is None and parse_xml(host.current_xml(new)).findtext("name") == new

    host = gather_host(conn)
    made = converge(conn, host=host, **copy.deepcopy(desc))
    assert effect(made) == effect(predicted), "check mode predicted another change than the real run made"
    assert old not in names(conn) and conn.lookupByName(new).UUIDString() == guest_uuid
    assert parse_xml(config(conn, new)).findtext("memory") == str(192 * 1024)
    assert host.current_xml(old) is None and host.domain(conn, old) is None
    assert host.current_xml(new) == config(conn, new)

    before = config(conn, new)
    again = converge(conn, **copy.deepcopy(desc))
    assert not again["changed"] and again["actions"] == [] and "renamed_from" not in again
    assert config(conn, new) == before
    assert not converge(conn, True, **copy.deepcopy(desc))["changed"]


def test_a_rename_alone_is_a_change(conn):
    old, guest_uuid = unique()
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid, state="running", autostart=True)
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid, state="shutoff")
    predicted = converge(conn, True, name=old + "-b", uuid=guest_uuid, state="running")
    made = converge(conn, name=old + "-b", uuid=guest_uuid, state="running")
    assert effect(made) == effect(predicted)
    assert made["changed"] and made["changes"] == [] and made["actions"] == ["rename %s to %s-b" % (old, old), "start"]
    dom = conn.lookupByName(old + "-b")
    assert dom.isActive() and dom.autostart() and old not in names(conn)


def test_a_running_guest_keeps_its_name_until_it_is_shut_off(conn):
    old, guest_uuid = unique()
    new = old + "-renamed"
    converge(conn, name=old, memory="128MiB", current_memory="96MiB", uuid=guest_uuid, state="running")
    desc = dict(name=new, memory="128MiB", current_memory="64MiB", uuid=guest_uuid, state="running")
    predicted = converge(conn, True, **copy.deepcopy(desc))
    made = converge(conn, **copy.deepcopy(desc))
    assert effect(made) == effect(predicted)
    assert made["rename_pending"] == old and "renamed_from" not in made
    assert made["changed"] and not made["created"] and made["applied_live"] == ["current_memory: 64MiB"]
    assert made["warnings"] == ["guest %s has the UUID declared for %s: it is converged under its current name, and "
                                "keeps the name %s until it is shut off and the task runs again (libvirt renames "
                                "only a guest that is shut off)" % (old, new, old)]
    assert new not in names(conn), "a second guest was made"
    assert conn.lookupByName(old).isActive() and conn.lookupByName(old).UUIDString() == guest_uuid
    again = converge(conn, **copy.deepcopy(desc))
    assert not again["changed"] and again["rename_pending"] == old and again["warnings"] == made["warnings"]

    # shut off (under its old name: still pending this run), then the next run renames it
    shut = copy.deepcopy(desc)
    shut["state"] = "shutoff"
    stopped = converge(conn, **shut)
    assert stopped["actions"] == ["shutdown"] and stopped["rename_pending"] == old
    renamed = converge(conn, **shut)
    assert renamed["renamed_from"] == old and renamed["actions"] == ["rename %s to %s" % (old, new)]
    assert conn.lookupByName(new).UUIDString() == guest_uuid and old not in names(conn)
    assert not converge(conn, **shut)["changed"]


def test_absent_leaves_a_guest_of_another_name_alone(conn):
    old, guest_uuid = unique()
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid)
    before = config(conn, old)
    for check in (True, False):
        result = converge(conn, check, name=old + "-renamed", uuid=guest_uuid, state="absent")
        assert result["changed"] is False and result["state"] == "absent"
        assert result["warnings"] == ["guest %s has the UUID declared for %s-renamed and was not removed: state absent "
                                      "removes only a guest named %s-renamed" % (old, old, old)]
    assert config(conn, old) == before
    # with its own name and UUID it goes
    assert converge(conn, name=old, uuid=guest_uuid, state="absent")["changed"]
    assert old not in names(conn)


def test_a_guest_libvirt_would_not_rename_is_refused_before_any_change(conn):
    old, guest_uuid = unique()
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid, state="running")
    conn.lookupByName(old).managedSave(0)  # shut off, with its saved state: libvirt refuses to rename it
    for check in (True, False):
        with pytest.raises(UserError) as info:
            converge(conn, check, name=old + "-b", uuid=guest_uuid)
        assert info.value.code == "refused" and "has a managed save image" in str(info.value)
    assert old in names(conn) and old + "-b" not in names(conn)


class FailingDefine:
    """A connection whose guest defines fail: what a write after the rename does when libvirt refuses it."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def defineXMLFlags(self, xml, flags=0):  # noqa: N802  (libvirt's name)
        raise libvirt.libvirtError("define refused (test)")


def test_a_failure_after_the_rename_takes_the_rename_back(conn):
    old, guest_uuid = unique()
    converge(conn, name=old, memory="128MiB", uuid=guest_uuid)
    before = config(conn, old)
    failing = FailingDefine(conn)
    with pytest.raises(UserError) as info:
        converge(failing, host=gather_host(failing), name=old + "-b", memory="256MiB", uuid=guest_uuid)
    assert info.value.code == "rolled_back" and "define refused" in str(info.value)
    assert old in names(conn) and old + "-b" not in names(conn)
    assert config(conn, old) == before
