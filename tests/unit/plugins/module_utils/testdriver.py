"""What the runner tests share: a stand-in for AnsibleModule (for the runners that still take one)."""

from __future__ import annotations

import tempfile

TEST_URI = "test:///default"  # libvirt's in-process test driver (the conn fixture in tests/unit/conftest.py)


class FakeModule:
    """What a runner needs of AnsibleModule: params (the argument spec's defaults, then ``params``),
    check_mode, warn(), tmpdir."""

    def __init__(self, argument_spec, check=False, **params):
        self.params = {key: option.get("default") for key, option in argument_spec.items()}
        self.params.update(uri=TEST_URI)
        self.params.update(params)
        self.check_mode = check
        self.warnings = []
        self.tmpdir = tempfile.gettempdir()

    def warn(self, message):
        self.warnings.append(message)
