"""The fault-injection suite: every case of ``cases.py`` keeps its promise."""

from __future__ import annotations

import pytest

from .cases import CASES, base_set


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return base_set(tmp_path_factory.mktemp("reliability"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.klass}-{c.name}" for c in CASES])
def test_fault(case, base, tmp_path):
    outcome = case.run(tmp_path)
    assert outcome.ok, outcome.detail
