"""Unit tests run without a daemon; fixtures are plain XML files next to the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "plugins" / "module_utils" / "fixtures"


@pytest.fixture
def fixture_text():
    def read(name):
        return (FIXTURES / name).read_text()
    return read
