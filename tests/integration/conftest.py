"""Fixtures for the integration tests: a real libvirtd, real ansible-playbook, cleanup."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import harness
import testguest
from test_testbed_fleet import EXAMPLE, TESTBED, clear


@pytest.fixture(scope="session")
def conn():
    connection = harness.connect()
    harness.sweep_stale(connection)  # leftovers of earlier, interrupted runs (not of live ones)
    yield connection
    connection.close()


@pytest.fixture
def prefix(conn):
    """A unique name prefix for this test's libvirt objects; they are removed afterwards."""
    value = harness.unique_prefix()
    yield value
    harness.sweep(conn, value)


@pytest.fixture
def ansible(tmp_path):
    return harness.Ansible(tmp_path / "ansible")


@pytest.fixture(scope="session")
def image():
    return testguest.build()


@pytest.fixture
def lab(conn, prefix, tmp_path):
    """An isolated network (no <forward>: guest packets stay on this machine) and a dir pool."""
    net = conn.networkDefineXML(
        "<network><name>%snet</name><bridge name='kvft%s'/></network>" % (prefix, prefix[-7:-1]))
    net.create()
    pool_dir = Path("/var/lib/libvirt/images") / (prefix + "pool")
    pool_dir.mkdir(exist_ok=True)
    pool = conn.storagePoolDefineXML(
        "<pool type='dir'><name>%spool</name><target><path>%s</path></target></pool>" % (prefix, pool_dir))
    pool.create(0)
    yield {"network": prefix + "net", "pool": prefix + "pool", "pool_dir": pool_dir}
    harness.sweep(conn, prefix)  # the pool's directory too


@pytest.fixture(scope="session")
def testbed():
    """Three hypervisors on this machine (tests/testbed/testbed.sh), shared by every test of the run that
    needs several; brought up on first use and torn down at the end of the run."""
    proc = subprocess.run(["bash", str(TESTBED), "up", "3"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "the test bed did not come up:\n" + proc.stdout + proc.stderr
    uris = proc.stdout.split()
    yield {"uris": uris, "root": Path("/run/kvmfleet-testbed"), "count": len(uris)}
    subprocess.run(["bash", str(TESTBED), "down", "3"], capture_output=True, check=False)


@pytest.fixture
def example(tmp_path, testbed):
    """A copy of the example inventory to edit, on a test bed without guests (before and after)."""
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE, copy)
    clear(testbed)
    yield copy
    clear(testbed)
