"""The operator's process tunes Python's garbage collector before it starts (`main.tune_collector`):
the detector decodes every watched object each cycle, and with the default thresholds most of a
cycle over 1,000 namespaces went to collections of the whole heap (bench/cycle_profile.py)."""
from __future__ import annotations

import gc

import pytest

from sre_operator import main


def test_the_operator_runs_with_the_collector_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []
    monkeypatch.setenv("SRE_OPERATOR_METRICS_PORT", "0")
    monkeypatch.setattr(main.kopf, "configure", lambda **_: None)
    monkeypatch.setattr(main.kopf, "run", lambda **_: seen.append(gc.get_threshold()))
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert main.run([], None, verbose=False, leader_election=False) == 0
    finally:
        gc.set_threshold(*before)
    assert seen == [main.GC_THRESHOLDS]
    young, middle, _ = main.GC_THRESHOLDS
    assert young * middle >= 500_000  # a page of a list (some 100,000 dicts) dies before it is promoted

