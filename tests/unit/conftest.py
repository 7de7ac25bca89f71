"""Unit tests run without a daemon: plain XML fixtures next to the tests, and libvirt's in-process test driver."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

FIXTURES = Path(__file__).parent / "plugins" / "module_utils" / "fixtures"
TEST_URI = "test:///default"  # libvirt's in-process test driver: one in-memory host, shared by the process


@pytest.fixture
def fixture_text():
    def read(name):
        return (FIXTURES / name).read_text()
    return read


def _open(uri):
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt.open(uri)


@pytest.fixture
def conn():
    """A connection to libvirt's test driver (guests, pools and volumes in memory; no daemon)."""
    connection = _open(TEST_URI)
    yield connection
    connection.close()


@pytest.fixture
def test_host(tmp_path):
    """Opens a test driver of its own from a <node> document (networks, pools, volumes, guests): a host no other
    test shares. ``test_host(NODE)`` returns the connection; it is closed after the test."""
    opened = []

    def open_host(node, name="node.xml"):
        path = tmp_path / name
        path.write_text(node)
        opened.append(_open("test://" + str(path)))
        return opened[-1]
    yield open_host
    for connection in opened:
        connection.close()
