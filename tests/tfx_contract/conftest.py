"""TFX's tests are absltest cases, written for absl's runner, which parses absl's flags
first; create_tempdir() reads --test_tmpdir. Under pytest nobody parses them."""
from __future__ import annotations

import pytest
from absl import flags


@pytest.fixture(autouse=True, scope="session")
def _absl_flags_parsed():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
