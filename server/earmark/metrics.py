"""``/metrics`` in Prometheus text format, read from live state at scrape time.

A custom collector reads the scheduler's own counters, so there is no second bookkeeping to
drift; a registry per app keeps several apps in one process apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from earmark.inference.engine import Engine
from earmark.inference.scheduler import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_S


class AppMetrics:
    def __init__(self, engine: Engine, sessions: Iterable[Any]) -> None:
        self.registry = CollectorRegistry()
        self.sessions_refused = Counter(
            "earmark_sessions_refused", "Live sessions refused at capacity",
            registry=self.registry,
        )
        self.audio_received = Counter(
            "earmark_audio_received_seconds", "Seconds of audio received on live sessions",
            registry=self.registry,
        )
        self.registry.register(_StateCollector(engine, sessions))

    def watch_webrtc(self, peers: Any) -> None:
        """Peer connections and their tasks, so a leak shows on /metrics."""
        self.registry.register(_WebRtcCollector(peers))


class _WebRtcCollector(Collector):
    def __init__(self, peers: Any) -> None:
        self.peers = peers

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("earmark_webrtc_peers", "WebRTC peer connections open",
                                value=len(self.peers.peers))
        yield GaugeMetricFamily("earmark_webrtc_tasks", "WebRTC session tasks running",
                                value=len(self.peers.tasks))
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped off the event loop (tests)
            return
        yield GaugeMetricFamily("earmark_event_loop_tasks", "asyncio tasks on the server loop",
                                value=tasks)


def _histogram(name: str, doc: str, bounds: tuple[float, ...], counts: list[int],
               total: float, labels: dict[str, str] | None = None) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=list(labels or {}))
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
    family.add_metric(list((labels or {}).values()), buckets, total)
    return family


class _StateCollector(Collector):
    def __init__(self, engine: Engine, sessions: Iterable[Any]) -> None:
        self.engine = engine
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        engine, sessions = self.engine, list(self.sessions)
        yield GaugeMetricFamily("earmark_sessions", "Live sessions now", value=len(sessions))
        yield GaugeMetricFamily("earmark_capacity_sessions",
                                "Sessions admitted before refusing (measured)",
                                value=engine.capacity())
        lags = [c.lag_s for c in sessions]
        yield GaugeMetricFamily("earmark_session_lag_max_seconds",
                                "Largest audio backlog not yet decoded, over live sessions",
                                value=max(lags, default=0.0))
        yield GaugeMetricFamily("earmark_sessions_shedding_partials",
                                "Live sessions whose interims are paused by load",
                                value=sum(1 for c in sessions if c.partials_shed))
        scheduler = engine.scheduler
        if scheduler is None:
            return
        stats = scheduler.stats
        depth = GaugeMetricFamily("earmark_queue_depth", "Queued requests", labels=["lane"])
        for lane, n in scheduler.pending().items():
            depth.add_metric([lane], n)
        yield depth
        age = GaugeMetricFamily("earmark_queue_age_seconds", "Wait of the oldest queued request",
                                labels=["lane"])
        for lane, seconds in scheduler.queue_age_s().items():
            age.add_metric([lane], seconds)
        yield age
        requests = CounterMetricFamily("earmark_requests", "Recognition requests",
                                       labels=["lane", "outcome"])
        busy = CounterMetricFamily("earmark_inference_busy_seconds",
                                   "Model time spent, shared out per request", labels=["lane"])
        audio = CounterMetricFamily("earmark_decoded_audio_seconds", "Audio decoded",
                                    labels=["lane"])
        for lane, ls in stats.lanes.items():
            requests.add_metric([lane, "ok"], ls.completed)
            requests.add_metric([lane, "failed"], ls.failed)
            busy.add_metric([lane], ls.busy_s)
            audio.add_metric([lane], ls.audio_s)
            yield _histogram("earmark_request_latency_seconds",
                             "Queued-to-result time of recognition requests",
                             LATENCY_BUCKETS_S, ls.latency_counts, ls.latency_sum_s,
                             {"lane": lane})
        yield requests
        yield busy
        yield audio
        yield CounterMetricFamily("earmark_partials_superseded",
                                  "Pending partials replaced by a newer one",
                                  value=stats.superseded)
        counts = [0] * (len(BATCH_SIZE_BUCKETS) + 1)
        total = 0
        for size, n in stats.batch_sizes.items():
            slot = next((i for i, b in enumerate(BATCH_SIZE_BUCKETS) if size <= b),
                        len(BATCH_SIZE_BUCKETS))
            counts[slot] += n
            total += size * n
        yield _histogram("earmark_batch_size", "Requests per model batch",
                         tuple(float(b) for b in BATCH_SIZE_BUCKETS), counts, float(total))
        decoded = sum(ls.audio_s for ls in stats.lanes.values())
        yield GaugeMetricFamily("earmark_realtime_factor",
                                "Model seconds per second of audio decoded (all lanes)",
                                value=stats.busy_s / decoded if decoded else 0.0)
        cost = engine.final_cost()
        yield GaugeMetricFamily("earmark_final_cost", "Model seconds per audio second of finals",
                                value=cost if cost is not None else float("nan"))
