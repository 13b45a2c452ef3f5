"""A node's task worker pool: claims the node's PENDING tasks and runs them in threads.

One dispatcher thread does the bookkeeping; up to ``concurrency`` worker threads run
task functions. Nothing here runs on the node daemon's loop thread.

* **Seeing work.** The pool keeps kazoo TreeCaches of ``/tasks`` and of the claim
  locks ``/locks/tasks`` (a :class:`~pvc.state.cache.ClusterCache`); every change there
  wakes the dispatcher, so an idle pool issues no ZooKeeper requests of its own.
* **Claiming.** For each PENDING task with ``run_on`` equal to its node, oldest first
  and while a thread is free, the dispatcher takes the task's claim Lock, re-reads the
  record and moves it to RUNNING with a version check (see :mod:`pvc.tasks.claims`).
* **Running.** The function gets a :class:`~pvc.tasks.context.TaskContext`. Returning
  gives SUCCESS with the result; raising gives FAILURE with the exception's message
  (the worker thread survives); a task that saw ``ctx.cancelled`` ends FAILURE with
  status "cancelled". The final state is written before the claim is released.
* **Cancelling.** A cancel request on a running task reaches ``ctx.cancelled`` through
  the cache; a PENDING task is finished by ``request_cancel`` itself and never starts.
* **Lost workers.** A RUNNING record whose claim has no holder lost its worker (the
  daemon died or its session expired). *Every* pool, on every node, checks for such
  records whenever its cache changes (an ephemeral lock znode disappearing is such a
  change) and on its first pass after starting; the first to take the abandoned claim
  marks the task FAILURE "worker lost". So a restarted daemon cleans up its own
  orphans at start, and orphans of a node that never comes back are cleaned up by the
  other nodes at once. If the pool's own session is lost, its running tasks are
  cancelled and end the same way.
* **Stopping** (:meth:`stop`): no new claims; running tasks are cancelled
  cooperatively and get ``grace`` seconds to end (as FAILURE "cancelled"); a task still
  running after that is marked FAILURE "worker lost" and its claim released (its
  thread cannot be killed; anything it writes later is refused).
* **Retention.** Every ``prune_interval`` seconds (and on its first pass) the pool
  deletes finished records beyond its :class:`~pvc.tasks.retention.Retention` and claim
  directories whose record is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import StateError
from pvc.state.store import LOST, Store
from pvc.tasks import claims, control, retention, runner, transitions
from pvc.tasks.claims import Claim
from pvc.tasks.context import PROGRESS_INTERVAL, TaskContext
from pvc.tasks.records import STATUS_WORKER_LOST, TaskRecord, TaskState, worker_name
from pvc.tasks.registry import TaskRegistry, TaskType
from pvc.tasks.runner import Change, Run

log = logging.getLogger("pvc.tasks")

#: Seconds between retries of a final-state write that failed on a ZooKeeper error.
RETRY_DELAY = 0.5


class TaskWorkers:
    """The task worker pool of node ``node_name`` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        node_name: str,
        registry: TaskRegistry,
        concurrency: int = 2,
        *,
        services: object = None,
        retention_policy: retention.Retention | None = None,
        grace: float = 5.0,
        tick: float = 1.0,
        prune_interval: float = 300.0,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a task worker pool needs at least one thread")
        self.store = store
        self.node = node_name
        #: The task types this pool runs; a task of any other type fails as unknown here.
        self.registry = registry
        self.concurrency = concurrency
        self.worker = worker_name(node_name)
        self.identifier = f"{self.worker}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.retention = retention_policy or retention.Retention()
        self.grace = grace
        self.tick = tick
        self.prune_interval = prune_interval
        self.progress_interval = progress_interval
        #: What this node offers its tasks besides the store (see TaskContext.services).
        self.services = services
        self.cache = ClusterCache(store, roots=(paths.TASKS, paths.task_claims()))
        self._running: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._seen: dict[str, tuple[int, TaskRecord | None]] = {}
        self._next_prune = 0.0
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin watching ``/tasks`` and running this node's tasks (returns at once)."""
        if self._thread is not None:
            return
        self.store.ensure(paths.TASKS)
        self.store.ensure(paths.task_claims())
        self.cache.listen(self._on_change)
        self.store.add_listener(self._on_connection)
        self.cache.start()
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"task-{self.node}")
        self._thread = threading.Thread(target=self._dispatch, name=f"tasks-{self.node}", daemon=True)
        self._thread.start()
        log.info("task workers %s started with %d threads", self.worker, self.concurrency)

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming, cancel running tasks, wait up to ``grace`` s for them to end."""
        if self._thread is None or self._closed.is_set():
            return
        grace = self.grace if grace is None else grace
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=max(grace, 5.0))
        runs = self.running_runs()
        for run in runs:
            run.ctx.cancel("cancelled: node daemon stopping")
        deadline = time.monotonic() + grace
        for run in runs:
            run.done.wait(max(0.0, deadline - time.monotonic()))
        for run in runs:
            if not run.done.is_set():
                self._abandon(run, grace)
        self._closed.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.store.remove_listener(self._on_connection)
        self.cache.close()
        log.info("task workers %s stopped", self.worker)

    def running(self) -> list[str]:
        """Ids of the tasks this pool is running now."""
        with self._lock:
            return sorted(self._running)

    def running_runs(self) -> list[Run]:
        with self._lock:
            return list(self._running.values())

    # -- callbacks (kazoo threads: only record and wake) ------------------------------------

    def _on_change(self, _path: str) -> None:
        self._wake.set()

    def _on_connection(self, state: str) -> None:
        if state == LOST:
            for run in self.running_runs():
                run.claim_lost = True
                run.ctx.cancel("worker lost: its ZooKeeper session ended")
        self._wake.set()

    # -- the dispatcher ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set() and not self.cache.wait_ready(0.2):
            pass
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._pass()
            except StateError as error:
                log.warning("task workers %s: ZooKeeper error, will retry: %s", self.worker, error)
            except Exception:  # a bug must not stop the pool
                log.exception("task workers %s: unexpected error", self.worker)
            self._wake.wait(self.tick)

    def _pass(self) -> None:
        if not self.store.connected:
            return
        tasks = self._snapshot()
        self._signal(tasks)
        self._reap(tasks)
        self._claim(tasks)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.prune_interval
            self._prune(tasks)

    def _prune(self, tasks: dict[str, TaskRecord]) -> None:
        """Apply the retention to finished records, sweep claim directories left behind."""
        removed = retention.prune(self.store, self.retention, tasks=tasks.values())
        if removed:
            log.info("pruned %d finished task records", len(removed))
        known = set(self.cache.children(paths.TASKS)) - set(removed)
        orphans = [
            task_id
            for task_id in self.cache.children(paths.task_claims())
            if task_id not in known and not self.cache.children(paths.task_claim(task_id))
        ]
        claims.sweep(self.store, orphans)

    def _snapshot(self) -> dict[str, TaskRecord]:
        """Records from the cache, decoding only those whose znode version changed."""
        seen: dict[str, tuple[int, TaskRecord | None]] = {}
        tasks: dict[str, TaskRecord] = {}
        for task_id in self.cache.children(paths.TASKS):
            path = paths.task(task_id)
            version = self.cache.version(path)
            memo = self._seen.get(task_id)
            record = memo[1] if memo and memo[0] == version else TaskRecord.from_bytes(self.cache.data(path))
            seen[task_id] = (version, record)
            if record is not None and record.id == task_id:
                tasks[task_id] = record
        self._seen = seen
        return tasks

    def _signal(self, tasks: dict[str, TaskRecord]) -> None:
        """Pass cancel requests (and records finished behind our back) to running tasks."""
        for run in self.running_runs():
            record = tasks.get(run.record.id)
            if record is None or record.is_finished:
                if record is not None and record.status == STATUS_WORKER_LOST:
                    run.claim_lost = True
                run.ctx.cancel("the task record was finished or removed by someone else")
            elif record.cancel_requested:
                run.ctx.cancel("cancelled by request")

    def _reap(self, tasks: dict[str, TaskRecord]) -> None:
        """Mark RUNNING tasks whose claim has no holder as FAILURE "worker lost"."""
        with self._lock:
            ours = {task_id for task_id, run in self._running.items() if not run.claim_lost}
        for record in tasks.values():
            if not record.is_running or record.id in ours:
                continue
            if self.cache.children(paths.task_claim(record.id)):
                continue  # a holder exists (the cache says so; reap() checks for real)
            reason = f"worker lost: the claim of {record.worker or 'its worker'} disappeared with its session"
            lost = claims.reap(self.store, record.id, self.identifier, reason)
            if lost is not None:
                log.warning("task %s (%s on %s): %s", record.id, record.name, record.run_on, reason)
                self._after_loss(lost)

    def _after_loss(self, record: TaskRecord) -> None:
        """Run the type's ``on_lost`` clean-up for a run just marked lost, in a thread of its
        own (it may take long; the dispatcher goes on), and add its outcome to the error."""
        kind = self.registry.lookup(record.name)
        if kind is None or kind.on_lost is None:
            return
        handler = kind.on_lost

        def clean_up() -> None:
            try:
                outcome = handler(self.services, record)
            except Exception as error:
                log.exception(
                    "task %s (%s): cleaning up after the lost worker failed", record.id, record.name
                )
                outcome = f"cleaning up after it failed: {error}"
            if not outcome:
                return
            log.warning("task %s (%s): %s", record.id, record.name, outcome)

            def noted(current: TaskRecord) -> TaskRecord:
                text = f"{current.error or current.status}; {outcome}"
                return replace(current, error=text, result={"message": text})

            with contextlib.suppress(StateError):
                control.update(self.store, record.id, noted)

        threading.Thread(target=clean_up, name=f"lost-{record.id}", daemon=True).start()

    def _claim(self, tasks: dict[str, TaskRecord]) -> None:
        waiting = sorted(
            (r for r in tasks.values() if r.is_pending and r.run_on == self.node),
            key=lambda r: (r.created, r.id),
        )
        for record in waiting:
            if self._stopping.is_set():
                return
            with self._lock:
                if len(self._running) >= self.concurrency:
                    return
                if record.id in self._running:
                    continue
            self._try_start(record.id)

    def _try_start(self, task_id: str) -> None:
        claim = Claim(self.store, task_id, self.identifier)
        if not claim.try_take():
            return  # another pool of this node is starting or running it
        try:
            task_type, record = self._start_record(task_id)
        except BaseException:
            claim.release()
            raise
        if task_type is None or record is None:
            claim.release()
            return
        run = Run(record=record, claim=claim, ctx=self._context(record))
        with self._lock:
            self._running[task_id] = run
        log.info("task %s (%s) started by %s", task_id, record.name, self.worker)
        if self._executor is not None:
            self._executor.submit(self._execute, run, task_type)

    def _start_record(self, task_id: str) -> tuple[TaskType | None, TaskRecord | None]:
        """Holding the claim: PENDING → RUNNING, or FAILURE for an unknown task type."""
        found = control.read(self.store, task_id)
        if found is None:
            return None, None
        task_type = self.registry.lookup(found[0].name)
        now = time.time()

        def change(record: TaskRecord) -> TaskRecord | None:
            if task_type is None and record.is_pending:
                return transitions.fail(record, f"task type '{record.name}' is not known on {self.node}", now)
            return transitions.claim(record, self.worker, now)

        record, written = control.update(self.store, task_id, change)
        if not written or record is None or record.state != TaskState.RUNNING:
            return None, None
        return task_type, record

    def _context(self, record: TaskRecord) -> TaskContext:
        def write(current: int, total: int, status: str) -> None:
            control.update(self.store, record.id, lambda r: transitions.progress(r, current, total, status))

        return TaskContext(record, self.store, write, interval=self.progress_interval, services=self.services)

    # -- running one task (worker threads) --------------------------------------------------

    def _execute(self, run: Run, task_type: TaskType) -> None:
        """Worker thread: run the function, then record how it ended."""
        outcome: Change | None = None
        try:
            outcome = runner.outcome(run, task_type)
        finally:
            if outcome is None:  # a BaseException (SystemExit in a task...) went through
                outcome = runner.failed(run.ctx, "the task was interrupted")
            if run.claim_lost:
                outcome = runner.lost(run.ctx.cancel_reason or STATUS_WORKER_LOST)
            self._finish(run, outcome)

    def _finish(self, run: Run, outcome: Change) -> None:
        """Write the final state (retrying while the claim is ours), then release the claim."""
        task_id = run.record.id
        try:
            while True:
                try:
                    record, _ = control.update(self.store, task_id, outcome)
                    if record is not None:
                        log.info(
                            "task %s (%s) finished: %s %s", task_id, record.name, record.state, record.status
                        )
                    break
                except StateError as error:
                    if run.claim_lost or run.abandoned or self._closed.is_set():
                        log.warning("task %s: final state not written (%s); claim is gone", task_id, error)
                        break
                    time.sleep(RETRY_DELAY)
        finally:
            if not run.abandoned:
                run.claim.release()
            with self._lock:
                if self._running.get(task_id) is run:
                    del self._running[task_id]
            run.done.set()
            self._wake.set()

    def _abandon(self, run: Run, grace: float) -> None:
        """stop(): a task ignored its cancellation for ``grace`` s; finish it for it."""
        run.abandoned = True
        reason = f"worker lost: the task did not stop within {grace:g} s of the node daemon stopping"
        try:
            control.update(self.store, run.record.id, runner.lost(reason))
        except StateError as error:
            log.warning("task %s: could not record that it was abandoned: %s", run.record.id, error)
        run.claim.release()
        with self._lock:
            self._running.pop(run.record.id, None)
        log.warning("task %s (%s): %s", run.record.id, run.record.name, reason)
