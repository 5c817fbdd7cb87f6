"""Capacity and load, read from the scheduler's measured costs and queue ages.

- Each live session may cost, at worst (someone talking all the time), the model time of its
  finals: ``final_cost`` model-seconds per audio-second, measured from the finals decoded so
  far (batch costs shared out per item). With ``workers`` model calls at once,
  ``capacity = capacity_headroom * workers / final_cost`` sessions; new sessions past it are
  refused. Until 20 s of finals are measured, only the configured ``max_sessions`` applies.
- Interims use what is left: their interval stretches with how long the oldest queued partial
  has waited, and they pause while the oldest queued final has waited longer than
  ``shed_partials_after_s``. Speculative (early) finals stop while a final has been queued
  for ``SPECULATE_BELOW_S``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from earmark.config import Settings
from earmark.inference.scheduler import InferenceScheduler

MIN_MEASURED_FINAL_S = 20.0
MAX_STRETCH = 8
SPECULATE_BELOW_S = 0.1  # oldest queued final's wait under which early finals are decoded


@dataclass(frozen=True)
class LoadPolicy:
    """What a session should do about interims right now."""

    partial_stretch: float  # multiply the partial interval by this
    shed_partials: bool  # ask for none at all
    speculate: bool = True  # decode finals early, during the endpoint silence


class LoadGauge:
    def __init__(self, settings: Settings, scheduler: InferenceScheduler | None = None,
                 workers: int = 1) -> None:
        self.settings = settings
        self.scheduler = scheduler
        self.workers = workers

    def final_cost(self) -> float | None:
        """Measured model-seconds per audio-second of finals (None until enough is seen)."""
        if self.scheduler is None:
            return None
        lane = self.scheduler.stats.lanes["final"]
        if lane.audio_s < MIN_MEASURED_FINAL_S:
            return None
        return lane.busy_s / lane.audio_s

    def capacity(self) -> int:
        """Sessions this machine can hold with finals on time (at most ``max_sessions``)."""
        cost = self.final_cost()
        if cost is None or cost <= 0 or not self.settings.admit_by_capacity:
            return self.settings.max_sessions
        budget = self.settings.capacity_headroom * self.workers  # model-seconds per second
        return max(1, min(self.settings.max_sessions, math.floor(budget / cost)))

    def load_policy(self) -> LoadPolicy:
        if self.scheduler is None:
            return LoadPolicy(1.0, False)
        # Live queue ages, not averages: a signal that stops when the backlog clears.
        age = self.scheduler.queue_age_s()
        # A speculative final only pays while finals start at once; queued, it is not early
        # and, whenever the speaker goes on, it is model time thrown away.
        speculate = age["final"] < SPECULATE_BELOW_S
        if age["final"] > self.settings.shed_partials_after_s:
            return LoadPolicy(MAX_STRETCH, True, speculate)
        interval_s = self.settings.partial_interval_ms / 1000
        stretch = 1.0 + age["partial"] / interval_s
        return LoadPolicy(min(MAX_STRETCH, stretch), False, speculate)
