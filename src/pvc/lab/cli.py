"""``pvc-lab``: a whole PVC cluster on this one machine."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pvc import processes
from pvc.client.errors import ClientError
from pvc.lab import database, endpoint, power
from pvc.lab.cluster import Lab, LabAlreadyUp, LabError
from pvc.lab.labstate import LabState
from pvc.lab.layout import LabLayout
from pvc.lab.netns import NetError
from pvc.power.ipmi import PowerState
from pvc.state.errors import StateError
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
@click.option(
    "--peer-net-index",
    "peers",
    multiple=True,
    type=int,
    help="Net index of another lab the nodes reach (repeatable; start both labs with each other).",
)
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
@click.option(
    "--database/--no-database",
    default=True,
    show_default=True,
    help="Run the provisioner's database (PostgreSQL under Patroni on the coordinators).",
)
@click.pass_context
def up(
    ctx: click.Context,
    nodes: int,
    coordinators: int | None,
    prefix: str,
    net_index: int,
    peers: tuple[int, ...],
    keepalive_interval: float,
    fence_intervals: int,
    session_timeout: float,
    timeout: float,
    vms: int,
    ceph: bool,
    database: bool,
) -> None:
    """Create the lab and start it; returns when every node runs and one is primary.

    On a lab whose processes are partly dead, start just those again (the options then
    change nothing: the lab keeps its layout) and print each restart.
    """
    try:
        layout = LabLayout(
            ctx.obj["dir"],
            nodes=nodes,
            coordinators=coordinators if coordinators is not None else min(3, nodes),
            prefix=prefix,
            net_index=net_index,
            peers=tuple(peers),
            keepalive_interval=keepalive_interval,
            fence_intervals=fence_intervals,
            session_timeout=session_timeout,
            ceph=ceph,
            database=database,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    lab = _lab(ctx)
    try:
        restarted = lab.heal(timeout=timeout)
        if restarted is None:
            lab.up(layout, timeout=timeout)
        else:
            state = lab.state()
            layout = state.layout if state else layout
            for sentence in restarted:
                click.echo(sentence)
            if not restarted:
                click.echo(str(LabAlreadyUp(state)))
                if not vms:
                    return
    except (LabError, NetError, StorageError, ClientError, StateError, power.PowerError) as error:
        raise click.ClickException(str(error)) from None
    if vms:
        from pvc.lab import demo  # slow to import: only here, not in the BMCs' power hook

        try:
            demo.create_demo_vms(layout, vms, say=lambda line: click.echo(line, err=True))
        except (demo.DemoError, ClientError) as error:
            raise click.ClickException(f"the lab is up, but its demo VMs are not: {error}") from None
    _print_status(lab.status())
    name = endpoint.connection_name(layout)
    click.echo(
        "\nNext:\n"
        f"  .venv/bin/pvc cluster status       the cluster's API (connection '{name}')\n"
        "  .venv/bin/pvc node list            nodes; 'pvc node primary hv2 --wait'\n"
        "  .venv/bin/pvc vm list              VMs ('pvc-lab up --vms 3' makes demo VMs)\n"
        "  .venv/bin/pvc-lab status           node and process states (--json)\n"
        "  .venv/bin/pvc-lab node kill hv2    SIGKILL hv2's pvcnoded (--service for\n"
        "                                     zookeeper, ceph-mon, libvirtd)\n"
        "  .venv/bin/pvc-lab node poweroff hv2  kill all of hv2 (its BMC stays on:\n"
        "                                     the cluster fences and restarts it)\n"
        "  .venv/bin/pvc-lab up               restart whatever has died\n"
        "  make lab-down                      stop the lab and remove all it created"
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


#: Status columns of the node table and the lab processes shown per node.
PROCESS_COLUMNS = ("anchor", "libvirtd", "zookeeper", "ceph-mon", "ceph-mgr", "pvcnoded")


def _print_status(report: dict, console: Console | None = None) -> None:
    """Two tables that fit 80 columns: node states, then each node's lab processes (PIDs;
    ``DEAD`` for a process that has died, ``-`` where the node runs none) and its power;
    then the nodes cut off the network."""
    console = console or Console()
    console.print(f"PVC lab in {report['directory']}", overflow="fold")
    nodes = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("node", "mode", "daemon", "coordinator", "domain", "cluster ip"):
        nodes.add_column(column, no_wrap=True)
    processes_table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    processes_table.add_column("node", no_wrap=True)
    for role in PROCESS_COLUMNS:
        processes_table.add_column(role, no_wrap=True, justify="right")
    processes_table.add_column("power", no_wrap=True)
    for node in report["nodes"]:
        nodes.add_row(
            node["name"],
            node["mode"],
            node["daemon_state"],
            node["coordinator_state"],
            node["domain_state"],
            node["cluster_ip"],
        )
        cells = []
        for role in PROCESS_COLUMNS:
            if role not in node["pids"]:
                cells.append("-")
            elif node["alive"][role]:
                cells.append(str(node["pids"][role]))
            else:
                cells.append("[bold red]DEAD[/]")
        processes_table.add_row(node["name"], *cells, _power_cell(node))
    console.print(nodes)
    console.print(processes_table)
    cut = [node["name"] for node in report["nodes"] if node.get("partitioned")]
    if cut:
        console.print(f"[bold red]partitioned:[/] {', '.join(cut)} ('pvc-lab node heal NODE' joins it again)")
    console.print(f"primary: {report['primary_node']}")
    console.print(f"ZooKeeper: {', '.join(report['zookeeper'])}")
    if not report["healthy"]:
        console.print("[bold red]degraded:[/] some lab processes have died; 'pvc-lab up' restarts them")


def _power_cell(node: dict) -> str:
    """The node's power as its BMC reports it (``?``: no BMC answers for it)."""
    now = node.get("power", "unknown")
    return {"off": "[bold red]off[/]", "unknown": "?"}.get(now, now)


#: The services ``node start|stop|kill --service`` act on (lab process roles).
SERVICES = ("pvcnoded", "zookeeper", "patroni", "ceph-mon", "ceph-mgr", "libvirtd")
SERVICE_OPTION = click.option(
    "--service",
    type=click.Choice(SERVICES),
    default="pvcnoded",
    show_default=True,
    help="Which of the node's services to act on.",
)


@cli.group()
def node() -> None:
    """Stop, kill or start one service of a node (its daemon unless --service says otherwise);
    cut its power or its network."""


def _signal_service(ctx: click.Context, name: str, service: str, sig: int) -> None:
    lab = _lab(ctx)
    state = lab.state()
    if state is None:
        raise click.ClickException(f"no lab in {ctx.obj['dir']}")
    try:
        lab.services(name, state)
    except LabError as error:
        raise click.ClickException(str(error)) from None
    ref = state.ref(name, service)
    if ref is None:
        raise click.ClickException(f"{name} runs no {service} in this lab")
    if not processes.is_alive(ref):
        raise click.ClickException(f"{service} on {name} is not running in this lab")
    if service == database.ROLE:  # Patroni with the PostgreSQL it runs
        database.signal_member(state.layout, name, ref, sig)
    else:
        processes.send(ref, sig)
    if sig == signal.SIGTERM:
        processes.wait_gone([ref], 15)
    click.echo(f"sent {signal.Signals(sig).name} to {service} on {name} (pid {ref.pid})")


@node.command("kill")
@click.argument("name")
@SERVICE_OPTION
@click.pass_context
def node_kill(ctx: click.Context, name: str, service: str) -> None:
    """SIGKILL a service of node NAME (a crash)."""
    _signal_service(ctx, name, service, signal.SIGKILL)


@node.command("stop")
@click.argument("name")
@SERVICE_OPTION
@click.pass_context
def node_stop(ctx: click.Context, name: str, service: str) -> None:
    """SIGTERM a service of node NAME and wait (up to 15 s) for its exit."""
    _signal_service(ctx, name, service, signal.SIGTERM)


@node.command("start")
@click.argument("name")
@SERVICE_OPTION
@click.pass_context
def node_start(ctx: click.Context, name: str, service: str) -> None:
    """Start a service of node NAME again."""
    try:
        ref = _lab(ctx).start_service(name, service)
    except LabError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"started {service} on {name} (pid {ref.pid})")


def _state(ctx: click.Context) -> LabState:
    state = LabState.load(ctx.obj["dir"])
    if state is None:
        raise click.ClickException(f"no lab in {ctx.obj['dir']}")
    return state


@node.command("power")
@click.argument("name")
@click.argument("action", type=click.Choice(["off", "on"]))
@click.pass_context
def node_power(ctx: click.Context, name: str, action: str) -> None:
    """Switch node NAME's power (what its BMC does: the BMCs run this).

    off: SIGKILL every process of the node at once and wait until all are gone.
    on: start the node's services again in the background, and return at once.
    """
    state = _state(ctx)
    try:
        if action == "off":
            began = time.monotonic()
            count = power.kill_node(state, name)
            power.record_power(state.layout, name, PowerState.OFF)
            click.echo(f"{name} is off ({count} processes killed in {time.monotonic() - began:.3f} s)")
        else:
            ref = power.spawn_power_on(state, name)
            power.record_power(state.layout, name, PowerState.ON)
            click.echo(f"{name} is on; its services are starting (pid {ref.pid}, log {ref.log})")
    except power.PowerError as error:
        raise click.ClickException(str(error)) from None


@node.command("boot", hidden=True)
@click.argument("name")
@click.option("--after", type=float, default=0.0, help="Seconds to wait first (the server's own boot).")
@click.pass_context
def node_boot(ctx: click.Context, name: str, after: float) -> None:
    """Start every dead service of node NAME, in order (run in the background by 'power on')."""
    time.sleep(after)
    try:
        for sentence in _lab(ctx).power_on(name):
            click.echo(sentence)
    except LabError as error:
        raise click.ClickException(str(error)) from None


@node.command("poweroff")
@click.argument("name")
@click.pass_context
def node_poweroff(ctx: click.Context, name: str) -> None:
    """Kill node NAME's operating system: every process of it at once, but its BMC stays on
    (fencing through the BMC powers it off and on again, which restarts it)."""
    began = time.monotonic()
    try:
        count = power.kill_node(_state(ctx), name)
    except power.PowerError as error:
        raise click.ClickException(str(error)) from None
    took = time.monotonic() - began
    click.echo(
        f"{name}'s processes are dead ({count} killed in {took:.3f} s); its BMC still reports power on"
    )


@node.command("partition")
@click.argument("name")
@click.pass_context
def node_partition(ctx: click.Context, name: str) -> None:
    """Cut node NAME off the network (peers, ZooKeeper, the BMCs); it keeps running."""
    try:
        power.partition(_state(ctx), name)
    except (power.PowerError, NetError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{name} is cut off the network ('pvc-lab node heal {name}' joins it again)")


@node.command("heal")
@click.argument("name")
@click.pass_context
def node_heal(ctx: click.Context, name: str) -> None:
    """Join node NAME to the network again after a partition."""
    try:
        power.heal(_state(ctx), name)
    except (power.PowerError, NetError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{name} is on the network again")


def main() -> None:
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # status probes report failures themselves
    cli()


if __name__ == "__main__":
    main()
