"""The controller: picks queued jobs and drives the engine, writing results as they arrive.

Each running job is held under a lease: the controller that claimed it renews the job's
heartbeat while the job's thread is alive, and every state it writes is conditional on still
holding the lease. A job whose heartbeat is older than ``lease_timeout_s`` has lost its runner
(the process died, or its thread did): any controller sharing the database queues it again —
or fails it once ``max_attempts`` runs have ended that way. Several controllers may share one
database; none ever takes over a job whose runner is alive.

Restart safety: an iteration becomes durable when its row is written (with the members' weights
on disk); a job taken over continues from its last completed iteration after the candidates of
its unfinished one are removed — no candidate lost, none recorded twice. In the evaluation phase
each completed training is durable (kept on disk until the model is exported): a job stopped
during the phase runs its steps again from the search's end, deterministically, but trains only
what its interrupted run had not finished; the step and training events of the interrupted run
are marked ``superseded`` first, so the job's record (its events less the superseded ones, and
``result.evaluation.steps``) holds each step once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.artifacts import ArtifactStore
from api.db import session_scope
from api.heap import freeze_after_tensorflow
from api.models import Candidate, CandidateState, Event, Iteration, Job, JobState, utcnow
from api.repositories import (
    CandidateRepository,
    EventRepository,
    IterationRepository,
    JobRepository,
)
from api.services.history import record_iteration
from api.settings import Settings
from automl.errors import AutoMLError, SearchCancelledError
from automl.search import SearchCallback  # no TensorFlow at import time
from automl.training_store import TrainingStore

log = logging.getLogger("automl.controller")

# the database is unreachable or dropped the connection: transient, unlike the job's own errors
DB_UNREACHABLE = (OperationalError, InterfaceError)


class LeaseLostError(Exception):
    """This controller no longer holds the job's lease: another one took it over, or a person
    deleted it. The thread stops without writing anything more."""


class Controller:
    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        store: ArtifactStore,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.store = store
        # who holds a lease: readable in the database, unique per process start
        self.lease_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._loop_thread: threading.Thread | None = None
        self._heartbeat_thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.sweep()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="automl-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        self._loop_thread = threading.Thread(
            target=self._loop, name="automl-controller", daemon=True
        )
        self._loop_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop picking jobs; running ones go back to the queue and continue at next start."""
        self._stop.set()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout)
        for thread in list(self._threads.values()):
            thread.join(timeout)
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _alive(self) -> list[str]:
        return [job_id for job_id, t in list(self._threads.items()) if t.is_alive()]

    def _heartbeat_loop(self) -> None:
        """Renew the lease of every job whose thread is alive — and only those: a job whose
        thread died without writing its end goes stale and is taken over."""
        while not self._stop.wait(self.settings.heartbeat_interval_s):
            self.heartbeat()
        self.heartbeat()  # the jobs still finishing their graceful stop

    def heartbeat(self) -> None:
        try:
            with session_scope(self.factory) as s:
                JobRepository(s).heartbeat(self.lease_id, self._alive())
        except Exception:  # noqa: BLE001 - the DB may blink; the lease has slack for that
            log.exception("renewing the job leases failed")

    def sweep(self) -> None:
        """Take over the jobs whose runner is gone: a stale lease (any controller's), or a
        thread of this controller that ended without writing the job's end."""
        cutoff = utcnow() - timedelta(seconds=self.settings.lease_timeout_s)
        with session_scope(self.factory) as s:
            stale = list(JobRepository(s).stale(cutoff))
            ids = [(job.id, job.lease_owner, job.heartbeat_at) for job in stale]
        for job_id, lease_owner, heartbeat_at in ids:
            self._take_over(job_id, lease_owner, heartbeat_at, "its runner stopped answering")

    def _reap(self) -> None:
        for job_id, thread in list(self._threads.items()):
            if thread.is_alive():
                continue
            del self._threads[job_id]
            with session_scope(self.factory) as s:
                job = s.get(Job, job_id)
                left = (
                    job is not None
                    and job.lease_owner == self.lease_id
                    and job.state in (JobState.running, JobState.evaluating)
                )
                heartbeat_at = job.heartbeat_at if job is not None else None
            if left:
                self._take_over(
                    job_id, self.lease_id, heartbeat_at, "its run ended without recording how"
                )

    def _take_over(self, job_id: str, lease_owner: str | None, heartbeat_at: Any, why: str) -> None:
        """Queue again (or fail, past max_attempts) a running job whose runner is gone. The
        write is conditional on the lease being the one found stale, so two controllers
        sweeping at once take a job over once, and a runner that renewed meanwhile keeps it."""
        with session_scope(self.factory) as s:
            job = s.get(Job, job_id)
            if job is None:
                return
            repo = JobRepository(s)
            cond = dict(lease_owner=lease_owner, heartbeat_at=heartbeat_at)
            if job.attempts >= self.settings.max_attempts:
                message = (
                    f"the job's run ended abnormally {job.attempts} time(s) ({why}; the service "
                    f"crashed or was killed while running it); it failed after max_attempts="
                    f"{self.settings.max_attempts}. Resume it to try again."
                )
                if not repo.take_over(
                    job_id, cond, state=JobState.failed, error=message, finished_at=utcnow()
                ):
                    return
                self._close_unfinished_in(s, job_id, "the job failed")
                EventRepository(s).add(job_id, "error", message, state="failed")
                return
            was_evaluating = job.state == JobState.evaluating
            if not repo.take_over(job_id, cond, state=JobState.queued):
                return
            s.refresh(job)
            completed, dropped = self._discard_partial_iteration(s, job)
            EventRepository(s).add(
                job.id,
                "state",
                f"the service stopped while this job ran ({why}); "
                + (
                    "its search had finished: the evaluation phase runs again from the search's end"
                    if was_evaluating
                    else f"it continues from iteration {completed} ({dropped} unfinished "
                    "candidate(s) will be trained again)"
                ),
                state="queued",
            )

    def _discard_partial_iteration(self, s: Session, job: Job) -> tuple[int, int]:
        """Delete the candidates of the iteration that never completed: the engine proposes
        the same ones again and trains them, so each candidate ends up recorded once."""
        completed = IterationRepository(s).completed_count(job.id)
        dropped = CandidateRepository(s).delete_from_iteration(job.id, completed)
        for c in dropped:
            self.store.weights_file(job.id, c.name).unlink(missing_ok=True)
        remaining = len(CandidateRepository(s).all_for_iterations(job.id, completed))
        job.candidates_done = job.candidates_total = remaining
        job.current_iteration = completed - 1 if completed else None
        return completed, len(dropped)

    def _close_unfinished(self, job_id: str, reason: str) -> None:
        with session_scope(self.factory) as s:
            self._close_unfinished_in(s, job_id, reason)

    @staticmethod
    def _close_unfinished_in(s: Session, job_id: str, reason: str) -> None:
        """A job that ends early leaves no candidate pending or running."""
        rows, _ = CandidateRepository(s).list(job_id, limit=10_000)
        for row in rows:
            if row.state in (CandidateState.pending, CandidateState.running):
                row.state = CandidateState.failed
                row.error = f"not finished: {reason}"
                row.finished_at = utcnow()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - keep the controller alive; the DB may blink
                log.exception("controller tick failed")
            self._stop.wait(self.settings.poll_interval_s)

    def _tick(self) -> None:
        self._reap()
        self.sweep()
        while len(self._threads) < self.settings.max_concurrent_jobs and not self._stop.is_set():
            with session_scope(self.factory) as s:
                # never a second thread on a job whose previous run here is still returning
                job = JobRepository(s).claim_next_queued(self.lease_id, exclude=list(self._threads))
                if job is None:
                    return
                EventRepository(s).add(
                    job.id, "state", "job running", state="running", attempt=job.attempts
                )
                job_id = job.id
            thread = threading.Thread(
                target=self.run_job, args=(job_id,), name=f"job-{job_id[:8]}", daemon=True
            )
            self._threads[job_id] = thread
            thread.start()

    # ---- one job ---------------------------------------------------------------------------
    def _set_state(self, job_id: str, state: JobState, message: str, **fields: Any) -> None:
        """Write the job's next state if this controller still holds its lease."""
        with session_scope(self.factory) as s:
            if state.is_finished():
                fields.update(finished_at=utcnow(), cancel_requested=False, lease_owner=None)
            elif state == JobState.queued:
                fields.update(lease_owner=None, heartbeat_at=None)
            if not JobRepository(s).release(job_id, self.lease_id, state, **fields):
                raise LeaseLostError(job_id)
            EventRepository(s).add(
                job_id, "error" if state == JobState.failed else "state", message, state=state
            )

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a person asked to cancel the job; raises LeaseLostError when this controller
        no longer runs it."""
        with session_scope(self.factory) as s:
            job = s.get(Job, job_id)
            if job is None or job.lease_owner != self.lease_id:
                raise LeaseLostError(job_id)
            return bool(job.cancel_requested)

    def run_job(self, job_id: str) -> None:
        try:
            self._run_outcome(job_id)
            freeze_after_tensorflow()
        except LeaseLostError:
            log.warning("job %s: this controller lost its lease; it stops here", job_id)
        except DB_UNREACHABLE:
            log.exception("job %s: the database failed under its run; it is taken over", job_id)
        except Exception:  # noqa: BLE001 - the end could not be written: _reap takes over
            log.exception("job %s: recording how it ended failed", job_id)

    def _run_outcome(self, job_id: str) -> None:
        try:
            self._run_job(job_id)
        except LeaseLostError:
            raise
        except DB_UNREACHABLE:
            # the database went away under the run (a restart, a failover): that is not the
            # job's failure. Whether "failed" could be written depends on how fast it comes
            # back; write nothing, so the run ends like a crashed one and is taken over (_reap,
            # or a sweep once the lease expires) from its last completed iteration
            raise
        except SearchCancelledError:
            self._close_unfinished(
                job_id, "the service stopped" if self.stopping else "the job was cancelled"
            )
            if self.stopping:
                self._set_state(
                    job_id,
                    JobState.queued,
                    "the service is stopping; the job continues from its last completed "
                    "iteration when it starts again",
                    # a graceful stop is not a failed run: it does not count toward max_attempts
                    attempts=Job.attempts - 1,
                )
            else:
                self._set_state(job_id, JobState.cancelled, "job cancelled")
        except AutoMLError as exc:
            self._close_unfinished(job_id, "the job failed")
            self._set_state(job_id, JobState.failed, f"job failed: {exc}", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not the controller
            log.exception("job %s crashed", job_id)
            self._close_unfinished(job_id, "the job failed")
            self._set_state(
                job_id,
                JobState.failed,
                f"job failed: {type(exc).__name__}: {exc}",
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
            )

    def _load(self, job_id: str) -> tuple[Any, Any, Any]:
        from automl.data import load_builtin, load_csv, load_npz
        from automl.spec import SearchSpec

        with session_scope(self.factory) as s:
            job = s.get(Job, job_id)
            assert job is not None
            spec = SearchSpec.from_dict(job.spec)
            if job.builtin_dataset:
                dataset = load_builtin(job.builtin_dataset)
            else:
                from api.models import Dataset

                row = s.get(Dataset, job.dataset_id) if job.dataset_id else None
                if row is None:
                    raise AutoMLError("the job's dataset was deleted; it cannot run")
                path = self.store.absolute(row.path)
                task: Any = row.task
                dataset = (
                    # with the column types stored on upload (detected or given by the user)
                    load_csv(
                        path, label=str(row.label), task=task, name=row.name, columns=row.columns
                    )
                    if row.format == "csv"
                    else load_npz(path, task=task, name=row.name)
                )
            executor_name = job.executor
        return spec, dataset, executor_name

    def _executor(self, name: str, spec: Any) -> Any:
        import workers  # noqa: F401 - registers the ray executor
        from automl.executors import create_executor

        if name != "ray":
            return create_executor(name, resources=spec.resources)
        return create_executor(
            name,
            resources=spec.resources,
            address=self.settings.ray_address,
            nice=self.settings.worker_nice,
            max_trainings=self.settings.worker_max_trainings,
            max_retries=self.settings.ray_max_retries,
            placement_timeout_s=self.settings.ray_placement_timeout_s,
        )

    def _run_job(self, job_id: str) -> None:
        from automl.data import prepare
        from automl.search import AdaNetSearch

        spec, dataset, executor_name = self._load(job_id)
        with session_scope(self.factory) as s:
            job = s.get(Job, job_id)
            assert job is not None
            completed, dropped = self._discard_partial_iteration(s, job)
            if dropped:
                EventRepository(s).add(
                    job_id,
                    "info",
                    f"continuing from iteration {completed}: {dropped} candidate(s) of the "
                    "unfinished iteration will be trained again",
                )
        data = prepare(
            dataset,
            test_fraction=spec.test_fraction,
            validation_fraction=spec.validation_fraction,
            seed=spec.seed,
        )
        resume = self.load_resume(job_id)
        callback = JobCallback(self, job_id)
        executor = self._executor(executor_name, spec)
        search = AdaNetSearch(spec, data, executor, [callback])
        result = search.run(resume=resume)
        self._set_state(
            job_id,
            JobState.evaluating,
            "search finished; evaluating the ensemble",
            stop_reason=result.stop_reason,
        )
        summary = self._finish(job_id, result, executor, callback)
        if self.cancel_requested(job_id):
            # asked while the model was exported: honoured, the export is discarded with it
            raise SearchCancelledError("the job was cancelled")
        self._set_state(job_id, JobState.succeeded, "job succeeded", result=summary)

    def _finish(
        self, job_id: str, result: Any, executor: Any, callback: JobCallback
    ) -> dict[str, Any]:
        """The evaluation phase (each step an event), the final model and its exports.

        The phase's trainings run on the job's executor (the Ray workers), never here; each is
        an event saying where it ran, how long it took and how it ended."""
        from automl.runner import finish

        self._supersede_interrupted_evaluation(job_id)

        def on_training(res: Any, record: dict[str, Any]) -> None:
            where = f" on {record['node']}" if record["node"] else ""
            retried = f", {record['attempts']} attempts" if record["attempts"] > 1 else ""
            how = (
                f"reused from the interrupted run (trained{where} in {record['duration_s']:.1f} s)"
                if record.get("reused")
                else f"{record['state']}{where} in {record['duration_s']:.1f} s{retried}"
            )
            with session_scope(self.factory) as s:
                EventRepository(s).add(
                    job_id,
                    "info" if res.ok else "error",
                    f"evaluation training {record['name']} ({record['kind']}) {how}"
                    + (f": {record['error']}" if record["error"] else ""),
                    training=record,
                )

        def on_step(step: Any) -> None:
            with session_scope(self.factory) as s:
                EventRepository(s).add(
                    job_id,
                    "info",
                    f"evaluation: {step.step}: {step.change}",
                    step=step.to_dict(),
                )
            # a cancel (or a stop of the service) during the evaluation phase is honoured
            # between its steps; resuming the job runs the phase again from the search's end
            if self.stopping or self.cancel_requested(job_id):
                raise SearchCancelledError("the job was cancelled during the evaluation phase")

        # the phase's completed trainings, kept until the job's model is exported: a run of
        # the phase after a kill, a stop or a cancel does not train them again
        store = TrainingStore(self.store.job_dir(job_id) / "evaluation_trainings")
        outcome = finish(
            result,
            self.store.job_dir(job_id),
            on_step,
            executor=executor,
            should_stop=callback.should_stop,
            on_training=on_training,
            training_store=store,
        )
        store.clear()
        report = outcome.report
        return {
            "test_metrics": report["test_metrics"],
            # the majority class (or the training mean) on the same rows: a useless model shows
            "baseline_test_metrics": report["baseline_test_metrics"],
            "best_member": report["best_member"],
            "best_member_test_metrics": report["best_member_test_metrics"],
            "ensemble": {
                k: report["ensemble"][k]
                for k in ("members", "params", "nonzero_params", "objective", "strategy")
            },
            "evaluation": report["evaluation"],
            "latency": report["latency"],
            "stop_reason": report["stop_reason"],
            "search_wall_s": report["wall_s"],
            "data": report["data"],
            "deterministic": report.get("deterministic"),
        }

    def _supersede_interrupted_evaluation(self, job_id: str) -> None:
        """Mark the step and training events of an earlier, unfinished run of the job's
        evaluation phase ``superseded`` (with one event saying so), before the phase runs again.

        The phase runs again from the search's end (deterministically: same seeds, same
        steps), its steps' fits and decisions again, but a training its interrupted run
        completed is not trained again: it is kept on disk (``TrainingStore``) and reported
        as reused. Without this the job's events
        would list those steps twice; with it, the events not marked superseded hold each step
        of the phase that produced the model once, as ``result.evaluation.steps`` does. A phase
        that reached its end is never run again (the job succeeded), so every unmarked step
        event found here belongs to an interrupted run."""
        with session_scope(self.factory) as s:
            events = s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id)).all()
            steps: list[str] = []
            trainings = 0
            for event in events:
                data = event.data or {}
                if data.get("superseded") or not ("step" in data or "training" in data):
                    continue
                # a new dict: SQLAlchemy writes a JSON column that is assigned, not mutated
                event.data = {**data, "superseded": True}
                if "step" in data:
                    steps.append(str(data["step"].get("step")))
                else:
                    trainings += 1
            if steps or trainings:
                EventRepository(s).add(
                    job_id,
                    "info",
                    "the evaluation phase runs again from the search's end; the "
                    f"{len(steps)} step(s) ({', '.join(steps) or 'none'}) and {trainings} "
                    "training(s) its interrupted run recorded are superseded",
                    superseded_steps=steps,
                    superseded_trainings=trainings,
                )

    # ---- resume ----------------------------------------------------------------------------
    def load_resume(self, job_id: str) -> Any:
        """The completed iterations of a job, as the engine's ResumeState (None if none)."""
        from automl.search import EnsembleRecord, IterationRecord, ResumeState

        with session_scope(self.factory) as s:
            iterations = list(IterationRepository(s).list(job_id))
            if not iterations:
                return None
            candidates = CandidateRepository(s).all_for_iterations(job_id, len(iterations))
            records = []
            for it in iterations:
                rec = IterationRecord(
                    iteration=it.iteration,
                    previous_objective=it.previous_objective,
                    candidates=[_record(c) for c in candidates if c.iteration == it.iteration],
                    ensembles=[EnsembleRecord(**e) for e in it.ensembles],
                    chosen=it.chosen,
                    best_objective=it.best_objective,
                    improved=it.improved,
                    duration_s=it.duration_s,
                )
                records.append(rec)
            members = next(
                (
                    e.members
                    for rec in reversed(records)
                    for e in rec.ensembles
                    if rec.chosen and e.name == rec.chosen
                ),
                [],
            )
        weights = {}
        for name in members:
            with np.load(self.store.weights_file(job_id, name), allow_pickle=False) as z:
                weights[name] = [z[f"arr_{i}"] for i in range(len(z.files))]
        return ResumeState(records, weights)


class JobCallback(SearchCallback):
    """Writes the search's progress to the database as it happens."""

    CANCEL_CHECK_S = 1.0

    def __init__(self, controller: Controller, job_id: str) -> None:
        self.c = controller
        self.job_id = job_id
        self._last_check = 0.0
        self._cancel = False
        self.meta: dict[str, Any] | None = None  # the data's meta-features, for the history

    def _session(self) -> Any:
        return session_scope(self.c.factory)

    def on_search_start(self, spec: Any, data: Any, families: list[str]) -> None:
        from automl.meta import meta_features

        self.meta = meta_features(data)
        with self._session() as s:
            EventRepository(s).add(
                self.job_id,
                "info",
                f"searching {data.dataset.name} ({data.task}) over {', '.join(families)}",
                data=data.summary(),
            )

    def on_iteration_start(self, iteration: int, specs: list[Any]) -> None:
        with self._session() as s:
            job = s.get(Job, self.job_id)
            assert job is not None
            for spec in specs:
                s.add(
                    Candidate(
                        job_id=self.job_id,
                        iteration=iteration,
                        name=spec.name,
                        origin=spec.origin,
                        hparams=spec.hparams,
                        seed=spec.seed,
                        state=CandidateState.pending,
                    )
                )
            job.current_iteration = iteration
            job.candidates_total += len(specs)
            EventRepository(s).add(
                self.job_id, "info", f"iteration {iteration} started with {len(specs)} candidates"
            )

    def on_note(self, message: str) -> None:
        with self._session() as s:
            EventRepository(s).add(self.job_id, "info", message)

    def on_candidate_start(self, spec: Any) -> None:
        with self._session() as s:
            row = CandidateRepository(s).get(self.job_id, spec.name)
            if row is not None:
                row.state = CandidateState.running
            # one event per training started: the record of how often each candidate trained
            EventRepository(s).add(
                self.job_id,
                "info",
                f"candidate {spec.name} started training",
                candidate=spec.name,
                iteration=spec.iteration,
            )

    def on_candidate_result(self, result: Any) -> None:
        if result.ok:
            path = self.c.store.weights_file(self.job_id, result.spec.name)
            tmp = path.with_name(path.stem + ".part.npz")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(tmp, *result.weights)
                tmp.replace(path)
            except OSError as exc:
                # the disk is full or refuses writes: not a bug of the job's, and not one a
                # traceback helps with; a half-written file would only keep the disk full
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                reason = exc.strerror or str(exc)
                raise AutoMLError(
                    f"storing the weights of candidate {result.spec.name} in {path.parent} "
                    f"failed: {reason} (errno {exc.errno}); the disk of the artifact directory "
                    f"{self.c.store.root} is full or not writable. Free space (or fix it) and "
                    "resume the job: it continues from its last completed iteration"
                ) from exc

    def on_candidate_end(self, record: Any) -> None:
        with self._session() as s:
            row = CandidateRepository(s).get(self.job_id, record.name)
            assert row is not None
            _fill(row, record)
            if record.state != "failed":
                row.weights_path = self.c.store.relative(
                    self.c.store.weights_file(self.job_id, record.name)
                )
            row.finished_at = utcnow()
            job = s.get(Job, self.job_id)
            assert job is not None
            job.candidates_done += 1
            if record.state == "failed":
                last = (record.error or "").strip().splitlines()[-1:] or ["unknown error"]
                EventRepository(s).add(
                    self.job_id,
                    "error",
                    f"candidate {record.name} failed: {last[0]}",
                    candidate=record.name,
                )

    def on_ensemble_chosen(self, record: Any, ensemble: Any) -> None:
        with self._session() as s:
            for c in record.candidates:  # final values: the ones told to the sampler
                row = CandidateRepository(s).get(self.job_id, c.name)
                if row is not None:
                    _fill(row, c)
            s.add(
                Iteration(
                    job_id=self.job_id,
                    iteration=record.iteration,
                    previous_objective=record.previous_objective,
                    best_objective=record.best_objective,
                    chosen=record.chosen,
                    improved=record.improved,
                    ensemble={
                        "members": [m.name for m in ensemble.members],
                        "mixture_weights": np.asarray(ensemble.fit.weights).tolist(),
                        "objective": ensemble.fit.objective,
                        "loss": ensemble.fit.loss,
                        "complexity": ensemble.fit.complexity,
                        "params": ensemble.params,
                    },
                    ensembles=[e.to_dict() for e in record.ensembles],
                    duration_s=record.duration_s,
                )
            )
            if self.meta is not None:  # its finished candidates join the owner's history
                record_iteration(s, self.job_id, record.candidates, self.meta)
            job = s.get(Job, self.job_id)
            assert job is not None
            job.best_objective = ensemble.fit.objective
            verdict = (
                f"iteration {record.iteration}: chose {record.chosen} "
                f"(F {record.previous_objective:.4f} → {record.best_objective:.4f})"
                if record.chosen
                else f"iteration {record.iteration}: no candidate beat the previous ensemble"
            )
            EventRepository(s).add(self.job_id, "info", verdict)
        keep = {m.name for m in ensemble.members}
        for c in record.candidates:  # only members' weights are needed to resume
            if c.name not in keep:
                self.c.store.weights_file(self.job_id, c.name).unlink(missing_ok=True)

    def should_stop(self) -> bool:
        if self.c.stopping:
            return True
        now = time.monotonic()
        if now - self._last_check >= self.CANCEL_CHECK_S:
            self._last_check = now
            try:
                self._cancel = self.c.cancel_requested(self.job_id)  # LeaseLostError stops it too
            except DB_UNREACHABLE:
                # the database blinks (a restart, a failover): asked from inside a training,
                # an error here would fail the candidate as if its own code had raised; ask
                # again at the next check (the lease has slack for this, and a write that
                # fails meanwhile ends the run, which the lease machinery takes over)
                log.warning(
                    "job %s: checking for a cancel failed: the database is unreachable",
                    self.job_id,
                )
        return self._cancel


# Columns a CandidateRecord and a candidate row share; the rest differ in name or kind.
_COPIED = (
    "loss",
    "complexity",
    "objective",
    "epochs_run",
    "error",
    "attempts",
    "failure_kind",
    "stop_reason",
)


def _record(row: Candidate) -> Any:
    """A stored candidate as the engine's CandidateRecord (for resume)."""
    from automl.search import CandidateRecord

    return CandidateRecord(
        name=row.name,
        iteration=row.iteration,
        origin=row.origin,
        hparams=row.hparams,
        seed=row.seed,
        state=row.state,
        depth=row.depth or 0,
        params=row.params or 0,
        metrics=dict(row.metrics),
        own_metrics=dict(row.own_metrics),
        chosen=row.chosen,
        duration_s=row.duration_s or 0.0,
        train_s=row.train_s or 0.0,
        node=row.node or "",
        history=dict(row.history or {}),
        **{k: getattr(row, k) for k in _COPIED},
    )


def _fill(row: Candidate, record: Any) -> None:
    for key in _COPIED:
        setattr(row, key, getattr(record, key))
    row.state = record.state
    row.depth = record.depth or None
    row.params = record.params or None
    row.metrics = dict(record.metrics)
    row.own_metrics = dict(record.own_metrics)
    row.chosen = bool(record.chosen)
    row.node = record.node or None
    row.duration_s = record.duration_s
    row.train_s = record.train_s
    if record.history:  # the curves the candidate's worker (in process or on Ray) recorded
        # JSON has no NaN or infinity (PostgreSQL refuses them): a diverged epoch is null
        row.history = {
            k: [float(v) if math.isfinite(v) else None for v in vals]
            for k, vals in record.history.items()
        }
