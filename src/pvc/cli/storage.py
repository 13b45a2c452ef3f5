"""``pvc storage``: the Ceph storage cluster: status and utilization reports, benchmarks, and the
``osd``, ``pool`` and ``volume`` groups (from :mod:`pvc.cli.storage_osd`, :mod:`pvc.cli.storage_pool`
and :mod:`pvc.cli.storage_volume`)."""

from __future__ import annotations

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.output import emit_data, format_option
from pvc.cli.storage_osd import create_db_vg, storage_osd, wait_option
from pvc.cli.storage_pool import ceph_path, fetch_list, storage_pool
from pvc.cli.storage_views import benchmark_info_pretty, benchmark_list_pretty
from pvc.cli.storage_volume import storage_volume
from pvc.cli.vm_common import run_task


@click.group(name="storage")
def storage() -> None:
    """Manage the cluster's Ceph storage."""


for _command in (storage_osd, storage_pool, storage_volume):
    storage.add_command(_command)


def _report(kind: str) -> None:
    """Print the text report of ``GET /storage/ceph/<kind>`` as the API gives it."""
    cli = options()
    data = cli.client().get(ceph_path(kind)).expect(200)
    if not isinstance(data, dict):
        raise CliError(f"Unexpected reply from the API for storage {kind}")
    text = str(data.get("ceph_data") or "")
    cli.emit(text, nl=not text.endswith("\n"))


@storage.command(name="status")
@format_option("pretty")
def storage_status(output_format: str) -> None:
    """Show Ceph's status report (health, monitors, OSDs, placement groups, I/O)."""
    _report("status")


@storage.command(name="util")
@format_option("pretty")
def storage_util(output_format: str) -> None:
    """Show Ceph's utilization report (raw space and space per pool)."""
    _report("utilization")


@storage.command(name="create-db-vg")
@click.argument("node")
@click.argument("device")
@wait_option
@yes_option
def storage_create_db_vg(node: str, device: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Create the OSD database volume group on DEVICE of NODE (same as 'storage osd create-db-vg')."""
    create_db_vg(node, device, wait_flag, confirm_flag)


# Benchmarks.


@storage.group(name="benchmark")
def storage_benchmark() -> None:
    """Run and read storage benchmarks."""


@storage_benchmark.command(name="run")
@click.argument("pool")
@click.option("--name", "name", default=None, help="Name of the job [default: from the time and pool].")
@wait_option
@yes_option
def storage_benchmark_run(pool: str, name: str | None, wait_flag: bool, confirm_flag: bool) -> None:
    """Benchmark the cluster's storage with a test volume in pool POOL (takes minutes, loads the cluster)."""
    cli = options()
    client = cli.client()
    confirm(
        f"Run a storage benchmark in pool {pool} (it loads the cluster for several minutes)", confirm_flag
    )
    reply = client.post(ceph_path("benchmark"), params={"pool": pool, "name": name})
    run_task(cli, client, reply, wait_flag)


benchmark_format_option = format_option("pretty", "json", "json-pretty")


@storage_benchmark.command(name="list")
@click.argument("job", required=False, default=None)
@benchmark_format_option
def storage_benchmark_list(job: str | None, output_format: str) -> None:
    """List benchmark jobs with the IOPS and bandwidth of each test, optionally only job JOB."""
    emit_data(fetch_list("benchmark", {"job": job}), output_format, benchmark_list_pretty)


@storage_benchmark.command(name="info")
@click.argument("job")
@benchmark_format_option
def storage_benchmark_info(job: str, output_format: str) -> None:
    """Show the results of benchmark job JOB: each test's figures, raw device figures and ratio."""
    jobs = [item for item in fetch_list("benchmark", {"job": job}) if str(item.get("job")) == job]
    if len(jobs) != 1:
        raise CliError(f"Benchmark job {job} not found")
    emit_data(jobs[0], output_format, benchmark_info_pretty)
