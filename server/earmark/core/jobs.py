"""File-job states and the webhook retry schedule (pure: no clocks, no I/O).

A job moves ``scheduled -> in_progress -> completed | failed``; ``scheduled -> failed`` also
happens (the audio cannot be read). Nothing leaves a final state. A job found
``in_progress`` at start-up was interrupted by a crash or restart and runs again without a new
status (its webhooks were already sent).
"""

from __future__ import annotations

import enum


class JobStatus(str, enum.Enum):  # noqa: UP042 - StrEnum changes what str() of a member gives
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


_ALLOWED = {
    JobStatus.SCHEDULED: {JobStatus.IN_PROGRESS, JobStatus.FAILED},
    JobStatus.IN_PROGRESS: {JobStatus.COMPLETED, JobStatus.FAILED},
    JobStatus.COMPLETED: set(),
    JobStatus.FAILED: set(),
}


def can_move(current: JobStatus, new: JobStatus) -> bool:
    return new in _ALLOWED[current]


def retry_delay_s(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failed delivery: doubling from ``base_s`` up to
    ``cap_s`` (1, 2, 4, ... with base 1)."""
    if attempts < 1:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(attempts - 1, 40)))


def gives_up(first_attempt_age_s: float, *, window_s: float) -> bool:
    """A delivery is abandoned once it has been retried for ``window_s``."""
    return first_attempt_age_s >= window_s
