"""The bench's judged rows say nothing when there is nothing to judge by: a ceiling that held no step."""

from bench.ingest import held_verdict


def test_the_held_step_is_judged_against_the_ceilings() -> None:
    assert held_verdict(8_000, 10_000) == "meets"
    assert held_verdict(7_999, 10_000) == "MISSES"
    assert held_verdict(0, 10_000) == "MISSES"


def test_no_verdict_when_the_ceiling_held_no_step() -> None:
    assert held_verdict(1_942, 0) == ""
    assert held_verdict(0, 0) == ""
