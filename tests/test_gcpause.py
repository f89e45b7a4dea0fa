"""paused_gc: nests, restores the collector, and freezes the long-lived results of a large
pause (and only of a large one)."""

from __future__ import annotations

import gc

import pytest

from releasectl.util.gcpause import FREEZE_AFTER, paused_gc


def test_pauses_nest_and_restore_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause leaves the outer one paused
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_program_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_only_a_large_pause_freezes_what_it_made() -> None:
    before = gc.get_freeze_count()
    with paused_gc():
        small: list[list[int]] = [[] for _ in range(1_000)]
    assert gc.get_freeze_count() == before
    with paused_gc():
        large: list[list[int]] = [[] for _ in range(FREEZE_AFTER + 1_000)]
    try:
        assert gc.get_freeze_count() >= before + FREEZE_AFTER
        assert len(small) + len(large) > FREEZE_AFTER
    finally:
        gc.unfreeze()
