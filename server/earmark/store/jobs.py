"""File jobs and conversations in the database (synchronous; call from a thread).

Every status change and the webhook delivery that reports it are written in one transaction,
so a crash can never leave a status without its webhook or the reverse.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from earmark.core.jobs import JobStatus, can_move
from earmark.errors import NotFound, TooManyJobs
from earmark.store.db import conversations, job_results, jobs, webhook_attempts, webhook_deliveries
from earmark.store.webhooks import enqueue

ACTIVE = (JobStatus.SCHEDULED.value, JobStatus.IN_PROGRESS.value)


@dataclass(frozen=True)
class Job:
    id: str
    conversation_id: str
    owner: str
    status: JobStatus
    reason: str | None
    created: float
    updated: float
    audio_path: str | None
    offset_s: float
    duration_s: float
    channels: int
    options: dict[str, Any]
    webhook_url: str | None
    runs: int

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(row.id, row.conversation_id, row.owner, JobStatus(row.status), row.reason,
                   row.created, row.updated, row.audio_path, row.offset_s, row.duration_s,
                   row.channels, orjson.loads(row.options_json), row.webhook_url, row.runs)


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    name: str
    created: float
    duration_s: float


def _limit_message(max_active: int) -> str:
    return (f"This API has a limit of maximum of {max_active} number of concurrent jobs per "
            "account. Wait for some jobs to complete and try again.")


def new_conversation_id() -> str:
    # Digits, like the seed's examples; 16 of them leave no practical chance of a clash.
    return str(secrets.randbelow(9 * 10**15) + 10**15)


class JobStore:
    """Jobs, conversations, results and the job webhooks' outbox rows."""

    def __init__(self, db: Engine, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock
        # One writer decides "under the per-key limit" and inserts, so two uploads cannot race.
        self._admit = threading.Lock()

    # ----------------------------------------------------------------- create
    def create_job(
        self,
        *,
        owner: str,
        conversation_id: str | None,
        name: str | None,
        audio_path: str,
        duration_s: float,
        channels: int,
        options: dict[str, Any],
        webhook_url: str | None,
        max_active: int,
    ) -> Job:
        """A new scheduled job; a new conversation unless ``conversation_id`` is given (append).

        Raises TooManyJobs past ``max_active`` unfinished jobs for the owner, NotFound for an
        unknown conversation.
        """
        now = self.clock()
        job_id = str(uuid.uuid4())
        with self._admit, self.db.begin() as conn:
            active = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.owner == owner, jobs.c.status.in_(ACTIVE))).scalar_one()
            if active >= max_active:
                raise TooManyJobs(_limit_message(max_active))
            if conversation_id is None:
                conversation_id = new_conversation_id()
                offset_s = 0.0
                conn.execute(insert(conversations).values(
                    id=conversation_id, owner=owner, name=name or conversation_id,
                    created=now, duration_s=duration_s))
            else:
                conv = self._conversation(conn, owner, conversation_id)
                offset_s = conv.duration_s
                conn.execute(update(conversations).where(conversations.c.id == conversation_id)
                             .values(duration_s=conv.duration_s + duration_s))
            conn.execute(insert(jobs).values(
                id=job_id, conversation_id=conversation_id, owner=owner,
                status=JobStatus.SCHEDULED.value, created=now, updated=now,
                audio_path=audio_path, offset_s=offset_s, duration_s=duration_s,
                channels=channels, options_json=orjson.dumps(options).decode(),
                webhook_url=webhook_url, runs=0))
            job = self._job(conn, job_id)
            self._notify(conn, job, now)
        return job

    # ------------------------------------------------------------------ read
    def check_room(self, owner: str, max_active: int) -> None:
        """Raises TooManyJobs before an upload is read (create_job checks again, atomically)."""
        with self.db.connect() as conn:
            active = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.owner == owner, jobs.c.status.in_(ACTIVE))).scalar_one()
        if active >= max_active:
            raise TooManyJobs(_limit_message(max_active))

    def get_job(self, owner: str, job_id: str) -> Job:
        with self.db.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id,
                                                  jobs.c.owner == owner)).first()
        if row is None:
            raise NotFound(f"job {job_id!r} was not found", param="jobId")
        return Job.from_row(row)

    def get_conversation(self, owner: str, conversation_id: str) -> Conversation:
        with self.db.connect() as conn:
            return self._conversation(conn, owner, conversation_id)

    def conversation_jobs(self, owner: str, conversation_id: str) -> list[Job]:
        with self.db.connect() as conn:
            self._conversation(conn, owner, conversation_id)
            rows = conn.execute(select(jobs).where(jobs.c.conversation_id == conversation_id)
                                .order_by(jobs.c.offset_s)).all()
        return [Job.from_row(r) for r in rows]

    def results(self, conversation_id: str) -> dict[str, list[dict[str, Any]]]:
        """Stored messages per job id (file-relative seconds)."""
        with self.db.connect() as conn:
            rows = conn.execute(select(job_results).where(
                job_results.c.conversation_id == conversation_id)).all()
        return {r.job_id: orjson.loads(r.messages_json) for r in rows}

    # -------------------------------------------------------------- running
    def unfinished(self) -> list[Job]:
        """Scheduled and in-progress jobs, oldest first (what a fresh process must run)."""
        with self.db.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.status.in_(ACTIVE))
                                .order_by(jobs.c.created)).all()
        return [Job.from_row(r) for r in rows]

    def start(self, job_id: str) -> Job | None:
        """Marks a run: ``scheduled -> in_progress`` (with its webhook), or a resumed
        in-progress job's run count. None if the job is gone or already final."""
        now = self.clock()
        with self.db.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            if row is None or JobStatus(row.status).final:
                return None
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                status=JobStatus.IN_PROGRESS.value, runs=row.runs + 1, updated=now))
            job = self._job(conn, job_id)
            if row.status == JobStatus.SCHEDULED.value:
                self._notify(conn, job, now)
        return job

    def release(self, job_id: str) -> None:
        """A clean shutdown stopped the job's run: it does not count towards the runs that
        fail a job which keeps crashing the process (``runner.MAX_RUNS``)."""
        with self.db.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.runs > 0)
                         .values(runs=jobs.c.runs - 1))

    def complete(self, job_id: str, messages: list[dict[str, Any]],
                 deliveries: Sequence[tuple[str, str]] = ()) -> bool:
        """Stores the result and marks the job completed; False if it was deleted meanwhile.
        ``deliveries`` (url, body): result webhooks queued in the same transaction (a
        Deepgram ``callback``), so a result is never stored without its delivery."""
        now = self.clock()
        with self.db.begin() as conn:
            job = self._move(conn, job_id, JobStatus.COMPLETED, None, now)
            if job is None:
                return False
            conn.execute(insert(job_results).values(
                job_id=job_id, conversation_id=job.conversation_id,
                messages_json=orjson.dumps(messages).decode()))
            self._notify(conn, job, now)
            for url, body in deliveries:
                enqueue(conn, kind="result", subject=job.id, owner=job.owner, url=url,
                        body=body, now=now)
        return True

    def fail(self, job_id: str, reason: str) -> bool:
        now = self.clock()
        with self.db.begin() as conn:
            job = self._move(conn, job_id, JobStatus.FAILED, reason, now)
            if job is None:
                return False
            self._notify(conn, job, now)
        return True

    # ------------------------------------------------------------ deletion
    def forget_audio(self, job_id: str) -> None:
        """Deletes a finished job's audio file now (retention 0)."""
        with self.db.begin() as conn:
            row = conn.execute(select(jobs.c.audio_path).where(jobs.c.id == job_id)).first()
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(audio_path=None))
        if row is not None and row.audio_path:
            Path(row.audio_path).unlink(missing_ok=True)

    def delete_conversation(self, owner: str, conversation_id: str) -> list[Job]:
        """Removes the conversation, its jobs, results and pending webhooks; returns the jobs
        (the caller stops any that run and deletes their audio)."""
        with self.db.begin() as conn:
            self._conversation(conn, owner, conversation_id)
            rows = conn.execute(select(jobs).where(
                jobs.c.conversation_id == conversation_id)).all()
            removed = [Job.from_row(r) for r in rows]
            self._delete_jobs(conn, [j.id for j in removed])
            conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
        return removed

    def expire(self, *, audio_before: float, results_before: float) -> list[str]:
        """Retention: forgets the audio of jobs finished before ``audio_before`` and whole
        conversations whose every job finished before ``results_before``. Returns the audio
        paths to delete."""
        paths: list[str] = []
        with self.db.begin() as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.audio_path).where(
                jobs.c.finished < audio_before, jobs.c.audio_path.is_not(None))).all()
            for r in rows:
                paths.append(r.audio_path)
            if rows:
                conn.execute(update(jobs).where(jobs.c.id.in_([r.id for r in rows]))
                             .values(audio_path=None))
            stale = select(jobs.c.conversation_id).group_by(jobs.c.conversation_id).having(
                func.max(func.coalesce(jobs.c.finished, now_sentinel())) < results_before)
            conv_ids = [r[0] for r in conn.execute(stale).all()]
            for conv_id in conv_ids:
                job_rows = conn.execute(select(jobs.c.id, jobs.c.audio_path).where(
                    jobs.c.conversation_id == conv_id)).all()
                paths.extend(r.audio_path for r in job_rows if r.audio_path)
                self._delete_jobs(conn, [r.id for r in job_rows])
                conn.execute(delete(conversations).where(conversations.c.id == conv_id))
        return paths

    # ------------------------------------------------------------- helpers
    def _conversation(self, conn: Connection, owner: str, conversation_id: str) -> Conversation:
        row = conn.execute(select(conversations).where(
            conversations.c.id == conversation_id, conversations.c.owner == owner)).first()
        if row is None:
            raise NotFound(f"conversation {conversation_id!r} was not found",
                           param="conversationId")
        return Conversation(row.id, row.owner, row.name, row.created, row.duration_s)

    @staticmethod
    def _job(conn: Connection, job_id: str) -> Job:
        return Job.from_row(conn.execute(select(jobs).where(jobs.c.id == job_id)).one())

    def _move(self, conn: Connection, job_id: str, new: JobStatus, reason: str | None,
              now: float) -> Job | None:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None or not can_move(JobStatus(row.status), new):
            return None
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(
            status=new.value, reason=reason, updated=now, finished=now))
        return self._job(conn, job_id)

    @staticmethod
    def _notify(conn: Connection, job: Job, now: float) -> None:
        if not job.webhook_url:
            return
        body = orjson.dumps({"jobId": job.id, "status": job.status.value,
                             "conversationId": job.conversation_id}).decode()
        enqueue(conn, kind="job", subject=job.id, owner=job.owner, url=job.webhook_url,
                body=body, now=now)

    @staticmethod
    def _delete_jobs(conn: Connection, job_ids: list[str]) -> None:
        if not job_ids:
            return
        deliveries = select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.subject.in_(job_ids))
        conn.execute(delete(webhook_attempts).where(
            webhook_attempts.c.delivery_id.in_(deliveries)))
        conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.subject.in_(job_ids)))
        conn.execute(delete(job_results).where(job_results.c.job_id.in_(job_ids)))
        conn.execute(delete(jobs).where(jobs.c.id.in_(job_ids)))


def now_sentinel() -> float:
    """Stands in for "not finished yet" in retention queries: far in the future."""
    return 1e18
