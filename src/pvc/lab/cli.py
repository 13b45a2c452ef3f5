"""``pvc-lab``: a whole PVC cluster on this one machine."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pvc import processes
from pvc.client.errors import ClientError
from pvc.lab import demo
from pvc.lab.cluster import Lab, LabAlreadyUp, LabError
from pvc.lab.layout import LabLayout
from pvc.lab.netns import NetError
from pvc.storage.errors import StorageError

LAB_DIR_ENV = "PVC_LAB_DIR"


def default_directory() -> Path:
    """``$PVC_LAB_DIR``, else ``.lab`` in the source tree, else ``./.lab``."""
    if os.environ.get(LAB_DIR_ENV):
        return Path(os.environ[LAB_DIR_ENV])
    source_root = Path(__file__).resolve().parents[3]
    if (source_root / "pyproject.toml").exists():
        return source_root / ".lab"
    return Path.cwd() / ".lab"


def _lab(ctx: click.Context) -> Lab:
    return Lab(ctx.obj["dir"], say=lambda line: click.echo(line, err=True))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Lab state directory (default: ${LAB_DIR_ENV} or .lab in the source tree).",
)
@click.pass_context
def cli(ctx: click.Context, directory: Path | None) -> None:
    """Run a complete PVC cluster on this machine, one network namespace per node."""
    if os.geteuid() != 0:
        raise click.ClickException("pvc-lab needs root (namespaces, links, bridges)")
    ctx.obj = {"dir": (directory or default_directory()).resolve()}


@cli.command()
@click.option("--nodes", default=3, show_default=True, help="Number of nodes.")
@click.option("--coordinators", default=None, type=int, help="Coordinators (default: min(3, nodes)).")
@click.option("--prefix", default="pvc", show_default=True, help="Prefix of namespace and link names.")
@click.option("--net-index", default=0, show_default=True, help="Third octet of the lab subnets.")
@click.option("--keepalive-interval", default=1.0, show_default=True, help="Seconds between keepalives.")
@click.option("--fence-intervals", default=5, show_default=True, help="Missed keepalives before dead.")
@click.option("--session-timeout", default=4.0, show_default=True, help="ZooKeeper session timeout (s).")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for the cluster.")
@click.option(
    "--vms",
    default=0,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Demo VMs (tiny TCG guests) to define and start through the API.",
)
@click.option("--ceph/--no-ceph", default=True, show_default=True, help="Run Ceph (one OSD per node).")
@click.pass_context
def up(
    ctx: click.Context,
    nodes: int,
    coordinators: int | None,
    prefix: str,
    net_index: int,
    keepalive_interval: float,
    fence_intervals: int,
    session_timeout: float,
    timeout: float,
    vms: int,
    ceph: bool,
) -> None:
    """Create the lab and start it; returns when every node runs and one is primary."""
    try:
        layout = LabLayout(
            ctx.obj["dir"],
            nodes=nodes,
            coordinators=coordinators if coordinators is not None else min(3, nodes),
            prefix=prefix,
            net_index=net_index,
            keepalive_interval=keepalive_interval,
            fence_intervals=fence_intervals,
            session_timeout=session_timeout,
            ceph=ceph,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    lab = _lab(ctx)
    try:
        lab.up(layout, timeout=timeout)
    except LabAlreadyUp as error:
        click.echo(str(error))
        if not vms:
            return
        layout = lab.state().layout
    except (LabError, NetError, StorageError, ClientError) as error:
        raise click.ClickException(str(error)) from None
    if vms:
        try:
            demo.create_demo_vms(layout, vms, say=lambda line: click.echo(line, err=True))
        except (demo.DemoError, ClientError) as error:
            raise click.ClickException(f"the lab is up, but its demo VMs are not: {error}") from None
    _print_status(lab.status())
    click.echo(
        "\nNext:\n"
        "  .venv/bin/pvc cluster status      the cluster through its API (connection 'lab')\n"
        "  .venv/bin/pvc node list           nodes; 'pvc node primary hv2 --wait' moves the primary\n"
        "  .venv/bin/pvc vm list             VMs ('pvc-lab up --vms 3' makes demo VMs)\n"
        "  .venv/bin/pvc-lab status          node and process states (--json for scripts)\n"
        "  .venv/bin/pvc-lab node kill hv2   SIGKILL a node daemon; 'node start hv2' brings it back\n"
        "  make lab-down                     stop the lab and remove everything it created"
    )


@cli.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every lab process and remove its namespaces, links and files."""
    if _lab(ctx).down():
        click.echo("lab is down")
    else:
        click.echo("no lab is up; nothing to do")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show lab processes and node states.

    Exit 0 if the lab is healthy, 1 if there is no lab, 2 if some (or all) of its
    processes have died.
    """
    report = _lab(ctx).status()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not report["exists"]:
        click.echo(f"no lab is up in {report['directory']}")
    elif not report["up"]:
        click.echo(
            f"the lab in {report['directory']} has died: every process has exited; "
            "'pvc-lab up' or 'pvc-lab down' removes what it left behind"
        )
    else:
        _print_status(report)
    if not report["exists"]:
        sys.exit(1)
    if not report["healthy"]:
        sys.exit(2)


def _print_status(report: dict) -> None:
    table = Table(title=f"PVC lab in {report['directory']}")
    for column in ("node", "mode", "daemon", "coordinator", "domain", "cluster ip"):
        table.add_column(column)
    table.add_column("pids: anchor/libvirtd/zookeeper/pvcnoded", no_wrap=True)
    for node in report["nodes"]:
        procs = "/".join(
            str(pid) + ("" if node["alive"][role] else "(DEAD)") for role, pid in node["pids"].items()
        )
        table.add_row(
            node["name"],
            node["mode"],
            node["daemon_state"],
            node["coordinator_state"],
            node["domain_state"],
            node["cluster_ip"],
            procs,
        )
    console = Console()
    console.print(table)
    console.print(f"primary: {report['primary_node']}   ZooKeeper: {','.join(report['zookeeper'])}")
    if not report["healthy"]:
        console.print("[bold red]degraded:[/] some lab processes have died (marked DEAD)")


@cli.group()
def node() -> None:
    """Stop, kill or start one node's daemon."""


def _signal_daemon(ctx: click.Context, name: str, sig: int) -> None:
    state = _lab(ctx).state()
    ref = state.ref(name, "pvcnoded") if state else None
    if ref is None or not processes.send(ref, sig):
        raise click.ClickException(f"pvcnoded on {name} is not running in this lab")
    if sig == signal.SIGTERM:
        processes.wait_gone([ref], 15)
    click.echo(f"sent {signal.Signals(sig).name} to pvcnoded on {name} (pid {ref.pid})")


@node.command("kill")
@click.argument("name")
@click.pass_context
def node_kill(ctx: click.Context, name: str) -> None:
    """SIGKILL the node daemon of NAME (a crash)."""
    _signal_daemon(ctx, name, signal.SIGKILL)


@node.command("stop")
@click.argument("name")
@click.pass_context
def node_stop(ctx: click.Context, name: str) -> None:
    """SIGTERM the node daemon of NAME and wait for its clean exit."""
    _signal_daemon(ctx, name, signal.SIGTERM)


@node.command("start")
@click.argument("name")
@click.pass_context
def node_start(ctx: click.Context, name: str) -> None:
    """Start the node daemon of NAME again."""
    try:
        ref = _lab(ctx).start_daemon(name)
    except LabError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"started pvcnoded on {name} (pid {ref.pid})")


def main() -> None:
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # status probes report failures themselves
    cli()


if __name__ == "__main__":
    main()
