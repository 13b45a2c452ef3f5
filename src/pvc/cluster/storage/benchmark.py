"""Storage benchmarks: a task on the primary that measures a pool, with the results kept.

A job is recorded under ``/ceph/benchmarks/<job>`` when queued (result ``"Running"``)
and holds the figures when done: for each test our librbd client's figure beside the
``rbd bench`` figure of the same run and their ratio (see :mod:`pvc.storage.benchmark`).
"""

from __future__ import annotations

import time
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.filters import PLAIN_NAME
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage import queries
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_storage
from pvc.state import paths
from pvc.state.records import decode_json, encode
from pvc.storage import benchmark
from pvc.tasks import TaskError, task_type

#: The result format of this module's jobs.
TEST_FORMAT = 2
RUNNING = "Running"
#: Bytes of the images the 4K random and 4M sequential tests work on.
RAND_REGION = benchmark.DEFAULT_RAND_REGION
SEQ_REGION = benchmark.DEFAULT_SEQ_REGION


def list_jobs(cluster: Cluster, job: str | None = None) -> list[dict[str, Any]]:
    """Benchmark jobs, oldest first (``job``: only that one; NotFoundError if unknown)."""
    cache = cluster.cache
    names = sorted(cache.children(paths.CEPH_BENCHMARKS))
    if job is not None:
        if job not in names:
            raise NotFoundError(f"Benchmark job '{job}' not found")
        names = [job]
    jobs = [decode_json(cache.data(paths.ceph_benchmark(name))) for name in names]
    return sorted((j for j in jobs if isinstance(j, dict)), key=lambda j: j.get("id", 0))


def submit(cluster: Cluster, pool: str, name: str | None = None) -> tasks.TaskRecord:
    """Record a new job for ``pool`` and queue its task on the primary."""
    store = cluster.store
    queries.get_pool(cluster, pool)
    job = name or f"{time.strftime('%Y%m%d%H%M%S')}_{pool}"
    if not PLAIN_NAME.fullmatch(job):
        raise ClusterError("name must be letters, digits, '.', '_' or '-' (up to 128)")
    if store.get(paths.ceph_benchmark(job)) is not None:
        raise ClusterError(f"Benchmark job '{job}' exists already")
    node = running_primary(cluster)
    if node is None:
        raise ClusterError("No primary coordinator is running to run the benchmark")
    existing = [
        decode_json(store.get(paths.ceph_benchmark(n))) or {} for n in store.children(paths.CEPH_BENCHMARKS)
    ]
    number = max((int(j.get("id", 0)) for j in existing if isinstance(j, dict)), default=0) + 1
    record = {"id": number, "job": job, "pool": pool, "test_format": TEST_FORMAT, "benchmark_result": RUNNING}
    store.ensure(paths.CEPH_BENCHMARKS)
    cluster.settle(store.set(paths.ceph_benchmark(job), encode(record), create=True))
    try:
        return task_actions.submit(cluster, run_benchmark, node, {"pool": pool, "job": job})
    except tasks.InvalidTaskError:
        cluster.settle(store.delete(paths.ceph_benchmark(job)))
        raise


@task_type("storage.benchmark")
def run_benchmark(ctx: NodeTaskContext, *, pool: str, job: str) -> dict[str, Any]:
    """Measure ``pool`` and keep the result in the job's record."""
    path = paths.ceph_benchmark(job)
    record = decode_json(ctx.store.get(path)) or {"id": 0, "job": job, "test_format": TEST_FORMAT}
    try:
        access = need_storage(ctx)
        with mapped_errors(access):
            result = benchmark.run(
                access.client(), pool, rand_region=RAND_REGION, seq_region=SEQ_REGION, progress=ctx.progress
            )
    except Exception as error:
        record["benchmark_result"] = f"Failed: {error}"
        ctx.store.set(path, encode(record), create=True)
        raise TaskError(f"Benchmark of pool {pool} failed: {error}") from None
    record["benchmark_result"] = result.to_dict()
    ctx.store.set(path, encode(record), create=True)
    return {"message": f"Benchmark job {job} of pool {pool} finished", "job": job}
