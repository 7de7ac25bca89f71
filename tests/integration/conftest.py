"""Fixtures for the integration tests: a real libvirtd, real ansible-playbook, cleanup."""

from __future__ import annotations

import pytest

import harness


@pytest.fixture(scope="session")
def conn():
    connection = harness.connect()
    harness.sweep(connection)  # leftovers of an earlier, interrupted run
    yield connection
    harness.sweep(connection)
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
