"""Each Map iteration's outcome, read back from the run's folder.

The Map collects only small ``ItemRecord``s (the 256 KiB state limit); each iteration wrote its
whole state to ``<type>/outcome.json`` before ending. When that write failed, the record's status
and the S3 error's name are all there is, and the reason says so.
"""

from __future__ import annotations

import logging

from rightsizer.aws.events import ItemRecord, ItemResult, IterationState, Outcome, StepError
from rightsizer.store import RunStore

log = logging.getLogger(__name__)


def item_results(store: RunStore, records: list[ItemRecord]) -> list[ItemResult]:
    return [_result(store, record) for record in records]


def _result(store: RunStore, record: ItemRecord) -> ItemResult:
    state = _read_state(store, record)
    if state is None:
        why = record.record_error or "its outcome.json is missing or unreadable"
        return ItemResult(
            instance_type=record.instance_type,
            instance_count=record.instance_count,
            outcome=Outcome(
                status=record.status,
                stage=None if record.status == "succeeded" else "unknown",
                error=None if record.status == "succeeded" else StepError(
                    Error="OutcomeNotRecorded",
                    Cause=f"the iteration's outcome could not be recorded ({why}); "
                    "see the execution's history for its error",
                ),
            ),
        )
    return ItemResult(
        instance_type=record.instance_type,
        instance_count=record.instance_count,
        outcome=state.outcome,
        created=state.created,
        cleanup=state.cleanup,
    )


def _read_state(store: RunStore, record: ItemRecord) -> IterationState | None:
    if record.outcome_key is None:
        return None
    try:
        return IterationState.model_validate_json(store.read_bytes(record.outcome_key))
    except Exception as exc:  # missing, not readable or malformed: no outcome either way
        log.warning("cannot read %s: %s", record.outcome_key, exc)
        return None
