"""Per-owner quotas: how many jobs an owner may have queued or running at once, and how many
bytes of datasets they may upload in any 24 hours. Reaching one is a 429 with ``Retry-After``.

The limits travel with the app's session factory (``Session.info``, set once in
``api.main``), so every service that enforces them — built by a JSON route or a dashboard page,
from nothing but a session — sees the same settings without each constructor taking them. A
session from a factory without limits (a test, a one-off script) enforces none.

Both checks count what the database holds and then let the request go on: two requests of one
owner at the same instant can both pass the last free place. A quota here bounds what an
owner can use, to within a request or two; it is not a lock.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from api.errors import PayloadTooLargeError, TooManyRequestsError
from api.models import utcnow
from api.repositories import DatasetRepository, JobRepository
from api.settings import Settings

SESSION_INFO_KEY = "automl.quotas"
UPLOAD_WINDOW = timedelta(hours=24)
# a job slot frees when a job of the owner finishes or is cancelled: no date to compute, so
# a client is asked to look again after this long
JOB_RETRY_AFTER_S = 30


@dataclass(frozen=True)
class QuotaLimits:
    """Per-owner limits.

    Args:
        max_active_jobs: Queued, running and evaluating jobs an owner may have at once.
        max_upload_bytes_per_day: Bytes of datasets an owner may upload in any 24 hours.
    """

    max_active_jobs: int
    max_upload_bytes_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaLimits:
        return cls(settings.max_jobs_per_owner, settings.max_upload_bytes_per_day)

    def session_info(self) -> dict[str, Any]:
        """What ``make_session_factory(engine, info=...)`` takes to enforce these limits."""
        return {SESSION_INFO_KEY: self}


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = math.ceil(rest / 60)
    if minutes == 60:
        hours, minutes = hours + 1, 0
    return f"{hours} h {minutes} min" if hours else f"{max(minutes, 1)} min"


def _stream_size(stream: BinaryIO) -> int | None:
    """The size of an upload that is already spooled (a seekable file), without reading it."""
    try:
        at = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(at)
    except (AttributeError, OSError, ValueError):  # a pipe or a socket: size unknown
        return None
    return max(0, int(size) - int(at))


class QuotaService:
    """Checks an owner's quotas before a job is queued or a dataset stored.

    Args:
        session: The request's session.
        limits: The limits to enforce; None enforces nothing.
    """

    def __init__(self, session: Session, limits: QuotaLimits | None) -> None:
        self.s = session
        self.limits = limits

    @classmethod
    def of(cls, session: Session) -> QuotaService:
        """The quotas the app configured for its sessions (see the module's docstring)."""
        return cls(session, session.info.get(SESSION_INFO_KEY))

    def check_job(self, owner: str) -> None:
        """Refuse (429) a job that would pass the owner's limit of jobs queued or running."""
        if self.limits is None:
            return
        active = JobRepository(self.s).count_active(owner)
        limit = self.limits.max_active_jobs
        if active >= limit:
            raise TooManyRequestsError(
                f"owner {owner!r} already has {active} queued, running or evaluating job(s), "
                f"the most allowed at once (AUTOML_MAX_JOBS_PER_OWNER={limit}); wait for one "
                "to finish, or cancel one",
                retry_after_s=JOB_RETRY_AFTER_S,
            )

    def check_upload(self, owner: str, stream: BinaryIO | None = None) -> None:
        """Refuse (429) an upload that would pass the owner's bytes in the last 24 hours.

        ``stream`` is the upload, already spooled by the server: its size counts when it can be
        told without reading it; otherwise the upload is refused only once the quota is used up.
        ``Retry-After`` is when enough of the owner's earlier uploads are older than 24 hours.
        """
        if self.limits is None:
            return
        limit = self.limits.max_upload_bytes_per_day
        incoming = _stream_size(stream) if stream is not None else None
        if incoming is not None and incoming > limit:
            raise PayloadTooLargeError(
                f"the file ({_mb(incoming)}) is larger than the upload quota of {_mb(limit)} "
                "per 24 hours (AUTOML_MAX_UPLOAD_MB_PER_DAY)",
                field="file",
            )
        now = utcnow()
        uploads = DatasetRepository(self.s).uploads_since(owner, now - UPLOAD_WINDOW)
        used = sum(size for _, size in uploads)
        needed = max(incoming or 0, 1)
        excess = used + needed - limit
        if excess <= 0:
            return
        # the oldest uploads age out first: wait until enough of them have
        freed, retry_after = 0, UPLOAD_WINDOW.total_seconds()
        for created_at, size in uploads:
            freed += size
            if freed >= excess:
                retry_after = (created_at + UPLOAD_WINDOW - now).total_seconds()
                break
        retry_s = max(1, math.ceil(retry_after))
        size_note = f"; this file is {_mb(incoming)}" if incoming else ""
        raise TooManyRequestsError(
            f"owner {owner!r} uploaded {_mb(used)} in the last 24 hours{size_note}, and the "
            f"quota is {_mb(limit)} (AUTOML_MAX_UPLOAD_MB_PER_DAY); try again in "
            f"{_duration(retry_s)}, when earlier uploads are older than 24 hours",
            retry_after_s=retry_s,
        )
