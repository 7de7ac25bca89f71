"""Desktops over plain XML, no daemon: SPICE and VNC displays with their devices (video heads and 3D, the display
agent channel, inputs, sound, audio, USB redirection, smartcards), how each reaches a running guest, and the read-back.
The random specs of test_domain_model.py's properties include these options too."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import live, normalize, readback
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

from test_domain_model import FIXTURE, converges, ctx, params, plan

DESKTOP = dict(
    video="qxl", video_heads=2, spice_agent=True,
    graphics=[{"type": "spice", "listen": "127.0.0.1", "password": "sp1ce-pw", "clipboard": True}],
    inputs=[{"type": "tablet", "bus": "usb"}], sounds=[{"model": "ich9"}], audio=[{"type": "spice"}],
    redirdevs=2, smartcards=[{"mode": "passthrough"}],
)


@pytest.fixture
def managed(fixture_text):
    return plan(fixture_text(FIXTURE)).after


def _root(xml):
    return etree.fromstring(xml.encode())


def test_a_spice_desktop_converges_and_reads_back(managed):
    result = converges(managed, **DESKTOP)
    root = _root(result.after)
    assert root.find("devices/video/model").attrib == {"type": "qxl", "heads": "2"}
    channel = root.find("devices/channel[@type='spicevmc']/target")
    assert channel.attrib == {"type": "virtio", "name": "com.redhat.spice.0"}
    spice = root.find("devices/graphics[@type='spice']")
    assert spice.get("passwd") == "sp1ce-pw" and spice.find("clipboard").get("copypaste") == "yes"
    assert root.find("devices/graphics[@type='vnc']") is None, "graphics is the whole list of displays"
    assert [(i.get("type"), i.get("bus")) for i in root.iterfind("devices/input")] == [
        ("mouse", "ps2"), ("keyboard", "ps2"), ("tablet", "usb")], "the PS/2 devices libvirt adds are kept"
    assert [r.attrib for r in root.iterfind("devices/redirdev")] == [{"bus": "usb", "type": "spicevmc"}] * 2
    assert root.find("devices/sound").get("model") == "ich9"
    assert root.find("devices/audio").attrib == {"id": "1", "type": "spice"}, "the guest's audio 1 changes its type"
    assert root.find("devices/smartcard").attrib == {"mode": "passthrough", "type": "spicevmc"}

    spec = readback.read_spec(result.after)
    assert spec["graphics"] == [{"type": "spice", "listen": "127.0.0.1", "autoport": True, "clipboard": True}], \
        "never the password; a listen address without a port is autoport"
    assert spec["inputs"] == [{"type": "tablet", "bus": "usb"}]
    assert spec["redirdevs"] == [{"bus": "usb", "type": "spicevmc"}] * 2
    assert spec["smartcards"] == [{"mode": "passthrough", "type": "spicevmc"}]
    assert (spec["video"], spec["video_heads"], spec["spice_agent"]) == ("qxl", 2, True)
    assert spec["sounds"] == [{"model": "ich9"}] and spec["audio"] == [{"type": "spice"}]
    spec.pop("managed")
    spec.pop("name")
    assert not plan(result.after, **spec).changed, "the read-back spec converges back to the same XML"


def test_a_vnc_desktop_with_qemu_vdagent_and_virtio_gpu_3d(managed):
    result = converges(managed, video="virtio", video_accel3d=True, qemu_vdagent=True,
                       graphics=[{"type": "vnc"}, {"type": "egl-headless"}], inputs=[{}], redirdevs=1)
    root = _root(result.after)
    assert root.find("devices/video/model/acceleration").get("accel3d") == "yes"
    channel = root.find("devices/channel[@type='qemu-vdagent']")
    assert channel.find("source/clipboard").get("copypaste") == "yes"
    assert channel.find("target").get("name") == "com.redhat.spice.0"
    assert sorted(g.get("type") for g in root.iterfind("devices/graphics")) == ["egl-headless", "vnc"]


@pytest.mark.parametrize("kind", ["sdl", "egl-headless", "dbus", "rdp"])
def test_the_graphics_types_users_declare_elsewhere(managed, kind):
    extra = {"gl": True} if kind in ("sdl", "dbus") else {}
    result = converges(managed, graphics=[dict(type=kind, **extra)])
    root = _root(result.after)
    assert [g.get("type") for g in root.iterfind("devices/graphics")] == [kind]
    assert readback.read_spec(result.after)["graphics"][0]["type"] == kind


def test_a_video_model_change_drops_the_old_models_memory_sizes(managed):
    video = "<video><model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1' primary='yes'/></video>"
    xml = managed.replace("</devices>", video + "</devices>")
    result = converges(xml, video="virtio")
    assert _root(result.after).find("devices/video/model").attrib == {"type": "virtio", "heads": "1", "primary": "yes"}


def _running_plan(xml, **spec):
    result = plan(xml, **spec)
    return result, live.split_live(result, running=True)


def test_what_a_running_guest_takes_live(managed):
    desktop = converges(managed, **DESKTOP).after
    # a new display password: virDomainUpdateDeviceFlags on the graphics device
    graphics = [dict(DESKTOP["graphics"][0], password="n3w-pw")]
    result, (now, later) = _running_plan(desktop, **{**DESKTOP, "graphics": graphics})
    assert [(op.op, op.label) for op in now] == [("update", "graphics spice")] and not later
    assert [c.describe() for c in result.changes] == ["graphics spice.password: <secret changed>"]
    assert "n3w-pw" not in result.diff()["after"] and "sp1ce-pw" not in result.diff()["before"]
    # a third USB redirection channel is hot-plugged; a second sound card waits for the next boot
    _result, (now, later) = _running_plan(desktop, **{**DESKTOP, "redirdevs": 3, "sounds": [{}, {"model": "ac97"}]})
    assert [(op.op, op.label) for op in now] == [("attach", "redirdev 2")]
    assert [what for what, _why in later] == ["sound 1"]
    # a removed one is detached live
    _result, (now, later) = _running_plan(desktop, **{**DESKTOP, "redirdevs": 1})
    assert [(op.op, op.label) for op in now] == [("detach", "redirdev 1")] and not later
    # a new display is no hot-plug: libvirt attaches none to a running guest
    _result, (now, later) = _running_plan(desktop, **{**DESKTOP, "graphics": DESKTOP["graphics"] + [{"type": "vnc"}]})
    assert not now and [what for what, _why in later] == ["graphics vnc"]


@pytest.mark.parametrize("spec, option, message", [
    (dict(graphics=[{"type": "vnc", "gl": True}]), "graphics[0].gl", "only spice, sdl, dbus"),
    (dict(graphics=[{"type": "sdl", "clipboard": False}]), "graphics[0].clipboard", "only spice"),
    (dict(spice_agent=True, qemu_vdagent=True), "qemu_vdagent", "at most one"),
    (dict(redirdevs=17), "redirdevs", "a count from 0 to 16"),
    (dict(redirdevs=[{"type": "tcp"}]), "redirdevs[0].type", "spicevmc"),
    (dict(redirdevs=[{"bus": "usb", "port": 1}]), "redirdevs[0]", "unknown key(s) port"),
    (dict(smartcards=[{"mode": "host", "type": "spicevmc"}]), "smartcards[0].type", "no type"),
    (dict(smartcards=[{}, {"mode": "passthrough"}]), "smartcards[1].mode", "one passthrough smartcard"),
    (dict(inputs=[{"bus": "ps2"}]), "inputs[0].bus", "usb, virtio"),
    (dict(sounds=[{"model": "hda"}]), "sounds[0].model", "ich9"),
])
def test_bad_desktop_input_names_the_option(spec, option, message):
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(**spec), ctx())
    assert err.value.option == option and message in str(err.value)


def test_devices_the_options_do_not_express_are_kept(managed):
    odd = ("<smartcard mode='passthrough' type='tcp'><source mode='connect' host='127.0.0.1' service='2001'/>"
           "<protocol type='raw'/></smartcard>"
           "<redirdev bus='usb' type='tcp'><source mode='connect' host='localhost' service='4000'/></redirdev>")
    xml = managed.replace("</devices>", odd + "</devices>")
    result = converges(xml, redirdevs=1, smartcards=[])
    root = _root(result.after)
    assert [r.get("type") for r in root.iterfind("devices/redirdev")] == ["tcp", "spicevmc"]
    assert [s.get("type") for s in root.iterfind("devices/smartcard")] == ["tcp"]
    assert "smartcards" in readback.read_spec(result.after) and readback.read_spec(result.after)["smartcards"] == []


def test_the_example_inventory_s_desktop_guest():
    """The example inventory's desktop profile (playbooks/inventories/example) makes a valid new guest, converged."""
    example = Path(__file__).resolve().parents[4] / "playbooks" / "inventories" / "example"
    profiles = yaml.safe_load((example / "group_vars" / "hypervisors" / "guests.yml").read_text())["guests_profiles"]
    listed = yaml.safe_load((example / "host_vars" / "hv3.yml").read_text())["guests_list"]
    [named] = [g for g in listed if "desktop" in g.get("profiles", ())]
    [desktop] = apply_profiles([named], profiles)
    result = converges(None, **desktop)
    root = _root(result.after)
    assert root.find("devices/graphics").get("type") == "spice"
    assert len(root.findall("devices/redirdev")) == 2 and root.find("devices/video/model").get("heads") == "2"


def test_one_display_agent_channel(managed):
    """The agent's channel name is one port in the guest: switching replaces the other type; a guest with both (it
    cannot start, libvirt defines it) reads as neither and is left as it is."""
    spice = converges(managed, spice_agent=True).after
    vdagent = converges(spice, qemu_vdagent=True).after
    assert [c.get("type") for c in _root(vdagent).iterfind("devices/channel")] == ["qemu-vdagent"]
    both = vdagent.replace("</devices>", "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/>"
                                         "</channel></devices>")
    spec = readback.read_spec(both)
    assert "spice_agent" not in spec and "qemu_vdagent" not in spec
    assert not plan(both, spice_agent=False, qemu_vdagent=False).changed
    fixed = converges(both, spice_agent=True)
    assert [c.get("type") for c in _root(fixed.after).iterfind("devices/channel")] == ["spicevmc"]
