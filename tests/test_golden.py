"""The sample's outputs equal the accepted golden snapshot (tests/golden.py)."""

from __future__ import annotations

from tests.golden import differences


def test_sample_outputs_equal_the_golden_snapshot(sample_run):
    problems = differences(sample_run)
    assert not problems, ("outputs differ from tests/golden/sample.json (refresh it with "
                          "'python -m tests.golden <workdir>' only when the change is meant): " + "; ".join(problems))
