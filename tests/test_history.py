"""The pure comparison of runs (rightsizer.history): what counts as a regression, and ordering."""

from __future__ import annotations

from rightsizer.history import (
    RunRecord,
    TypeFigures,
    compare,
    earlier_run_ids,
    format_diff,
    newest_first,
    parse_run_id,
)


def figures(instance_type: str, capacity: float, price: float = 0.1) -> TypeFigures:
    return TypeFigures(instance_type=instance_type, viable=capacity > 0,
                       capacity_per_instance=capacity, p99_ms=40.0, price_per_hour=price)


def record(run_id: str, *types: TypeFigures, recommended: str | None = "a",
           cost: float | None = 0.1, traffic: tuple[float, float] = (10, 100)) -> RunRecord:
    name, started = parse_run_id(run_id) or ("x", "")
    return RunRecord(run_id=run_id, name=name, started_at=started, uri=f"runs/{run_id}/",
                     status="succeeded" if recommended else "nothing viable",
                     min_rps=traffic[0], max_rps=traffic[1], recommended_type=recommended,
                     instances_at_max=1, cost_per_hour_at_max=cost, types=list(types))


OLD = "digits-demo-20261201T080000Z-aaaaaa"
NEW = "digits-demo-20261202T080000Z-bbbbbb"


def test_a_run_id_gives_the_inputs_name_and_start_even_with_dashes_in_the_name():
    assert parse_run_id(OLD) == ("digits-demo", "2026-12-01T08:00:00+00:00")
    assert parse_run_id("not-a-run") is None


def test_equal_runs_do_not_regress():
    diff = compare(record(OLD, figures("a", 100)), record(NEW, figures("a", 100)))
    assert not diff.regressed and diff.regressions == [] and diff.notes == []


def test_capacity_falling_past_the_threshold_regresses_and_within_it_does_not():
    old = record(OLD, figures("a", 100), figures("b", 50))
    assert compare(old, record(NEW, figures("a", 100), figures("b", 47))).regressions == []
    diff = compare(old, record(NEW, figures("a", 100), figures("b", 40)))
    assert diff.regressions == ["b: capacity fell 20%, 50.0 -> 40.0 rps per instance"]
    assert "b" in format_diff(diff) and diff.regressed


def test_a_changed_recommendation_or_a_dearer_fleet_regresses():
    old = record(OLD, figures("a", 100), figures("b", 100))
    changed = compare(old, record(NEW, figures("a", 100), figures("b", 100), recommended="b"))
    assert changed.regressions == ["recommended type changed: a -> b"]
    gone = compare(old, record(NEW, figures("a", 0), recommended=None, cost=None))
    assert "recommended type changed: a -> nothing viable" in gone.regressions
    dearer = compare(old, record(NEW, figures("a", 100), figures("b", 100), cost=0.12))
    assert dearer.regressions[0].startswith("recommended fleet (a) costs 20% more")
    assert compare(old, record(NEW, figures("a", 100), figures("b", 100), cost=0.105)).regressions \
        == []


def test_a_stricter_threshold_catches_a_smaller_fall():
    old, new = record(OLD, figures("a", 100)), record(NEW, figures("a", 96))
    assert not compare(old, new).regressed
    assert compare(old, new, threshold=0.03).regressed


def test_different_traffic_and_missing_types_are_noted_not_regressions():
    old = record(OLD, figures("a", 100), figures("b", 80), traffic=(10, 100))
    diff = compare(old, record(NEW, figures("a", 100), traffic=(10, 200)))
    assert not diff.regressed
    assert any(n.startswith("traffic differs") for n in diff.notes)
    assert "not in the newer run: b" in diff.notes


def test_earlier_runs_are_of_the_same_name_before_this_one_newest_first():
    ids = [OLD, NEW, "digits-demo-20261203T080000Z-cccccc", "other-20261201T070000Z-dddddd",
           "digits-demo-extra-20261201T070000Z-eeeeee"]
    assert earlier_run_ids(ids, "digits-demo-20261203T080000Z-cccccc") == [NEW, OLD]
    assert [r.run_id for r in newest_first([record(OLD), record(NEW)])] == [NEW, OLD]
