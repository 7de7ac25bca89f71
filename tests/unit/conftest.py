"""Unit tests run without a daemon; fixtures are plain XML files next to the tests."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

FIXTURES = Path(__file__).parent / "plugins" / "module_utils" / "fixtures"


@pytest.fixture
def fixture_text():
    def read(name):
        return (FIXTURES / name).read_text()
    return read


TEST_URI = "test:///default"  # libvirt's in-process test driver: a fresh in-memory host per connection


@pytest.fixture
def conn():
    """A connection to libvirt's test driver (guests, pools and volumes in memory; no daemon)."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    connection = libvirt.open(TEST_URI)
    yield connection
    connection.close()
