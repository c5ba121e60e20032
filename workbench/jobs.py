"""The server's fine-tuning jobs: who owns each, how many run, how long they and their folders last."""
from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.job import FineTuneJob, JobError, kill_orphans

from .disk import dead_instances


@dataclass
class Entry:
    job: FineTuneJob
    owner: str  # the session that started it
    ended: float | None = None  # time.time() when it was first seen ended


class JobRegistry:
    """Jobs in `folder`/<id> (`folder`: this server's, disk.instance_folder). The limits are checked
    and the job registered under one lock, so two sessions starting at once cannot both pass them."""

    def __init__(self, folder: Path, max_running: int, max_seconds: float) -> None:
        self.folder, self.max_running, self.max_seconds = Path(folder), max_running, max_seconds
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def recover(self) -> int:
        """At start-up: kill the training processes that killed servers left in their folders beside
        this one (`folder` is root/<server process id>) and remove those folders; returns how many
        processes were killed. Servers still running keep theirs."""
        killed = 0
        for folder in dead_instances(self.folder.parent):
            killed += kill_orphans(folder)
            shutil.rmtree(folder, ignore_errors=True)
        return killed

    def start(self, owner: str, make: Callable[[Path, float], FineTuneJob]) -> str:
        """Make a job in a new folder with the time limit (make(folder, max_seconds)) and start it;
        JobError when a limit says no."""
        with self._lock:
            running = [e for e in self._entries.values() if e.job.status().running]
            if any(e.owner == owner for e in running):
                raise JobError("This session's fine-tuning is still running: cancel it or wait for it to end.")
            if len(running) >= self.max_running:
                raise JobError("Another fine-tuning job is running on this server; try again when it has ended.")
            job_id = uuid.uuid4().hex
            job = make(self.folder / job_id, self.max_seconds)
            job.start()
            self._entries[job_id] = Entry(job, owner)
        return job_id

    def get(self, job_id: str | None, owner: str) -> FineTuneJob | None:
        """The job, when `owner` started it."""
        with self._lock:
            entry = self._entries.get(job_id or "")
        return entry.job if entry and entry.owner == owner else None

    def owned(self, owner: str) -> list[FineTuneJob]:
        with self._lock:
            return [e.job for e in self._entries.values() if e.owner == owner]

    def end_session(self, owner: str) -> None:
        """Cancel the owner's jobs and delete their folders: no one else can reach them."""
        with self._lock:
            ids = [i for i, e in self._entries.items() if e.owner == owner]
            entries = [self._entries.pop(i) for i in ids]
        for entry in entries:
            _discard(entry.job)

    def evict(self, after_seconds: float) -> int:
        """Remove jobs that ended more than `after_seconds` ago (their sessions never closed); returns how many."""
        now, old = time.time(), []
        with self._lock:
            for job_id, entry in self._entries.items():
                if entry.ended is None and not entry.job.status().running:
                    entry.ended = now
                if entry.ended is not None and now - entry.ended > after_seconds:
                    old.append(job_id)
            entries = [self._entries.pop(i) for i in old]
        for entry in entries:
            _discard(entry.job)
        return len(entries)


def _discard(job: FineTuneJob) -> None:
    job.cancel()
    job.wait(timeout=30)
    shutil.rmtree(job.folder, ignore_errors=True)
