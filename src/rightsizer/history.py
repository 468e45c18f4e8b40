"""Runs of one input over time: what each concluded, how two compare, what counts as a regression.

Pure, no I/O: the adapters (``store`` for folders and S3, ``results`` at the end of a run, the CLI's
``history`` and ``diff``, ``aws.alerts``) read the runs and hand them here.

A run is indexed by its input's ``name``, which begins its run id
(``<name>-<UTC start, 20261125T194400Z>-<hash>``), so listing a name reads no file.

NEW regresses from OLD, by more than ``threshold`` (a fraction, 0.10 = 10%), when
  * a type measured in both has a capacity per instance that falls by more than the threshold
    (a type that was viable and failed this time fell to 0),
  * the recommended fleet's cost per hour at max traffic rises by more than the threshold, or
  * the recommended type changes (or nothing is recommended any more).
Latency at the sustainable rate and prices are compared and shown; they count through the cost
and the recommendation, not on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rightsizer.recommend import Recommendation

DEFAULT_THRESHOLD = 0.10
TREND_RUNS = 8  # runs shown in a report's trend, the current one included
RUN_ID = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<tag>[0-9a-z]+)$")
STAMP = "%Y%m%dT%H%M%SZ"

RunStatus = Literal["succeeded", "nothing viable", "unfinished"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypeFigures(_Frozen):
    """One instance type as one run measured and priced it."""

    instance_type: str
    viable: bool
    capacity_per_instance: float
    p99_ms: float | None
    price_per_hour: float | None


class RunRecord(_Frozen):
    """What one run concluded: a line of ``rightsizer history``, one side of a diff."""

    run_id: str
    name: str
    started_at: str
    uri: str
    status: RunStatus
    min_rps: float | None = None
    max_rps: float | None = None
    recommended_type: str | None = None
    instances_at_max: int | None = None
    cost_per_hour_at_max: float | None = None
    types: list[TypeFigures] = []

    def figures(self, instance_type: str) -> TypeFigures | None:
        return next((t for t in self.types if t.instance_type == instance_type), None)


class TypeChange(_Frozen):
    instance_type: str
    old: TypeFigures | None
    new: TypeFigures | None
    capacity_change: float | None  # (new - old) / old; None when either side is missing

    @property
    def capacity_fell(self) -> bool:
        return self.capacity_change is not None and self.capacity_change < 0


class RunDiff(_Frozen):
    """OLD against NEW, type by type, and the regressions found (empty: none)."""

    old: RunRecord
    new: RunRecord
    threshold: float
    types: list[TypeChange]
    cost_change: float | None
    regressions: list[str]
    notes: list[str]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


# --- reading runs -------------------------------------------------------------------------------


def parse_run_id(run_id: str) -> tuple[str, str] | None:
    """``(name, started_at ISO)`` from a run id, or None for an id rightsizer did not make."""
    match = RUN_ID.match(run_id)
    if not match:
        return None
    started = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
    return match["name"], started.isoformat()


def run_record(run_id: str, uri: str, recommendation: Recommendation | None) -> RunRecord | None:
    """A run's record from its recommendation (None: it has none yet); None for a foreign id."""
    parsed = parse_run_id(run_id)
    if parsed is None:
        return None
    name, started_at = parsed
    if recommendation is None:
        return RunRecord(run_id=run_id, name=name, started_at=started_at, uri=uri,
                         status="unfinished")
    best = recommendation.recommended
    return RunRecord(
        run_id=run_id, name=name, started_at=started_at, uri=uri,
        status="succeeded" if best else "nothing viable",
        min_rps=recommendation.min_rps, max_rps=recommendation.max_rps,
        recommended_type=best.instance_type if best else None,
        instances_at_max=best.instances_at_max if best else None,
        cost_per_hour_at_max=best.cost_per_hour_at_max if best else None,
        types=[
            TypeFigures(instance_type=o.instance_type, viable=o.status == "viable",
                        capacity_per_instance=o.capacity_per_instance, p99_ms=o.p99_ms,
                        price_per_hour=o.price_per_hour)
            for o in recommendation.options
        ],
    )


def newest_first(records: Iterable[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=lambda r: (r.started_at, r.run_id), reverse=True)


def earlier_run_ids(run_ids: Iterable[str], current: str) -> list[str]:
    """The runs of ``current``'s name that started before it, newest first."""
    parsed = parse_run_id(current)
    if parsed is None:
        return []
    name, started = parsed
    earlier = [
        (p[1], run_id) for run_id in run_ids
        if (p := parse_run_id(run_id)) and p[0] == name and (p[1], run_id) < (started, current)
    ]
    return [run_id for _, run_id in sorted(earlier, reverse=True)]


# --- comparing two runs -------------------------------------------------------------------------


def compare(old: RunRecord, new: RunRecord, threshold: float = DEFAULT_THRESHOLD) -> RunDiff:
    names = [t.instance_type for t in new.types]
    names += [t.instance_type for t in old.types if t.instance_type not in names]
    changes = [_type_change(name, old.figures(name), new.figures(name)) for name in names]
    cost_change = _relative(old.cost_per_hour_at_max, new.cost_per_hour_at_max)
    regressions = [
        *_capacity_regressions(changes, threshold),
        *_recommendation_regressions(old, new, cost_change, threshold),
    ]
    return RunDiff(old=old, new=new, threshold=threshold, types=changes,
                   cost_change=cost_change, regressions=regressions, notes=_notes(old, new))


def _type_change(name: str, old: TypeFigures | None, new: TypeFigures | None) -> TypeChange:
    change = None
    if old is not None and new is not None:
        change = _relative(old.capacity_per_instance, new.capacity_per_instance)
    return TypeChange(instance_type=name, old=old, new=new, capacity_change=change)


def _relative(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old <= 0:
        return None
    return (new - old) / old


def _capacity_regressions(changes: Sequence[TypeChange], threshold: float) -> list[str]:
    lines = []
    for c in changes:
        if c.old and c.new and c.capacity_change is not None and c.capacity_change < -threshold:
            lines.append(
                f"{c.instance_type}: capacity fell {-c.capacity_change:.0%}, "
                f"{c.old.capacity_per_instance:.1f} -> {c.new.capacity_per_instance:.1f} rps "
                "per instance"
            )
    return lines


def _recommendation_regressions(
    old: RunRecord, new: RunRecord, cost_change: float | None, threshold: float
) -> list[str]:
    if old.recommended_type is None:
        return []
    if new.recommended_type != old.recommended_type:
        return [f"recommended type changed: {old.recommended_type} -> "
                f"{new.recommended_type or 'nothing viable'}"]
    if cost_change is not None and cost_change > threshold:
        return [f"recommended fleet ({new.recommended_type}) costs {cost_change:.0%} more at max "
                f"traffic: ${old.cost_per_hour_at_max:.4f}/h -> ${new.cost_per_hour_at_max:.4f}/h"]
    return []


def _notes(old: RunRecord, new: RunRecord) -> list[str]:
    notes = []
    if (old.min_rps, old.max_rps) != (new.min_rps, new.max_rps):
        notes.append(f"traffic differs: {_traffic(old)} then {_traffic(new)} rps, so instance "
                     "counts and costs differ for that reason too")
    missing = [t.instance_type for t in old.types if new.figures(t.instance_type) is None]
    if missing:
        notes.append(f"not in the newer run: {', '.join(missing)}")
    return notes


def _traffic(record: RunRecord) -> str:
    return f"{record.min_rps:g}-{record.max_rps:g}"


# --- text for the terminal ----------------------------------------------------------------------


def format_history(records: Sequence[RunRecord]) -> str:
    rows = [("started (UTC)", "status", "recommended", "count", "$/h at max", "rps/instance",
             "run")]
    for r in records:
        capacities = " ".join(f"{t.instance_type}={t.capacity_per_instance:.1f}"
                              for t in r.types) or "-"
        rows.append((
            r.started_at.replace("+00:00", "Z"), r.status, r.recommended_type or "-",
            "-" if r.instances_at_max is None else str(r.instances_at_max),
            _money(r.cost_per_hour_at_max), capacities, r.run_id,
        ))
    return _table(rows)


def format_diff(diff: RunDiff) -> str:
    rows = [("type", "rps/inst old", "new", "change", "p99 ms old", "new", "$/h old", "new")]
    for c in diff.types:
        rows.append((
            c.instance_type, _capacity(c.old), _capacity(c.new), _change(c.capacity_change),
            _ms(c.old), _ms(c.new), _price(c.old), _price(c.new),
        ))
    head = [
        f"old: {diff.old.run_id} ({diff.old.started_at})",
        f"new: {diff.new.run_id} ({diff.new.started_at})",
        f"recommended: {_fleet(diff.old)} -> {_fleet(diff.new)} "
        f"({_change(diff.cost_change)} cost at max traffic)",
        "",
    ]
    verdict = ([f"REGRESSION (threshold {diff.threshold:.0%}):", *(f"  {r}" for r in
                diff.regressions)] if diff.regressed
               else [f"no regression (threshold {diff.threshold:.0%})"])
    return "\n".join([*head, _table(rows), "", *verdict, *(f"note: {n}" for n in diff.notes)])


def _fleet(r: RunRecord) -> str:
    if r.recommended_type is None:
        return "nothing viable"
    return f"{r.instances_at_max} x {r.recommended_type} at {_money(r.cost_per_hour_at_max)}/h"


def _capacity(f: TypeFigures | None) -> str:
    if f is None:
        return "-"
    return f"{f.capacity_per_instance:.1f}" + ("" if f.viable else " (not viable)")


def _ms(f: TypeFigures | None) -> str:
    return "-" if f is None or f.p99_ms is None else f"{f.p99_ms:.0f}"


def _price(f: TypeFigures | None) -> str:
    return _money(None if f is None else f.price_per_hour)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0%}"


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
