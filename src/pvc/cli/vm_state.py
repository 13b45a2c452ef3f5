"""``pvc vm start|restart|shutdown|stop|disable|migrate|move|unmigrate``: a VM's state and placement.

State changes ``POST /vm/{vm}/state`` (``state``, ``force``, ``wait``); placement changes
``POST /vm/{vm}/node`` (``action``, ``node``, ``force``, ``wait``, ``force_live``). With ``-w/--wait`` the
API answers once the node daemon has finished the change, or once its wait limit has passed
(202, printed like a 200: the change goes on).
"""

from __future__ import annotations

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import options
from pvc.cli.vm_common import domain_argument, emit_reply, vm_path

wait_option = click.option(
    "-w", "--wait", "wait_flag", is_flag=True, default=False, help="Wait for the change to finish."
)
force_option = click.option(
    "--force", "force_flag", is_flag=True, default=False, help="Force the change of state."
)
target_option = click.option(
    "-t",
    "--target",
    "target_node",
    default=None,
    help="Node to move the VM to [default: chosen by the VM's node selector].",
)
force_live_option = click.option(
    "--force-live",
    "force_live_flag",
    is_flag=True,
    default=False,
    help="Fail rather than fall back to shutting the VM down if live migration fails.",
)


def _set_state(
    domain: str,
    state: str,
    force_flag: bool = False,
    wait_flag: bool = False,
    question: str | None = None,
    confirm_flag: bool = False,
) -> None:
    """Post the new state, first asking ``question`` (unless --yes) when there is one."""
    cli = options()
    client = cli.client()
    if question:
        confirm(question, confirm_flag)
    params = {"state": state, "force": force_flag, "wait": wait_flag}
    # 202: the server stopped waiting (api.limits.wait_timeout); the change goes on.
    emit_reply(cli, client.post(vm_path(domain, "state"), params=params), 200, 202)


def _place(
    domain: str,
    action: str,
    target_node: str | None = None,
    force_flag: bool = False,
    wait_flag: bool = False,
    force_live_flag: bool = False,
) -> None:
    cli = options()
    params = {
        "action": action,
        "node": target_node,
        "force": force_flag,
        "wait": wait_flag,
        "force_live": force_live_flag,
    }
    emit_reply(cli, cli.client().post(vm_path(domain, "node"), params=params), 200, 202)


@click.command(name="start")
@domain_argument
@force_option
def vm_start(domain: str, force_flag: bool) -> None:
    """Start VM DOMAIN."""
    _set_state(domain, "start", force_flag=force_flag)


@click.command(name="restart")
@domain_argument
@wait_option
@yes_option
def vm_restart(domain: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Restart VM DOMAIN (a clean shutdown, then a start)."""
    _set_state(
        domain, "restart", wait_flag=wait_flag, question=f"Restart VM {domain}", confirm_flag=confirm_flag
    )


@click.command(name="shutdown")
@domain_argument
@wait_option
@yes_option
def vm_shutdown(domain: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Shut down VM DOMAIN cleanly (ACPI power button)."""
    _set_state(
        domain, "shutdown", wait_flag=wait_flag, question=f"Shut down VM {domain}", confirm_flag=confirm_flag
    )


@click.command(name="stop")
@domain_argument
@force_option
@yes_option
def vm_stop(domain: str, force_flag: bool, confirm_flag: bool) -> None:
    """Forcibly stop VM DOMAIN at once (like pulling the power cord)."""
    _set_state(
        domain,
        "stop",
        force_flag=force_flag,
        question=f"Forcibly stop VM {domain}",
        confirm_flag=confirm_flag,
    )


@click.command(name="disable")
@domain_argument
@force_option
@yes_option
def vm_disable(domain: str, force_flag: bool, confirm_flag: bool) -> None:
    """Disable VM DOMAIN so it is not started automatically; with --force, stop it first."""
    question = f"Forcibly stop and disable VM {domain}" if force_flag else None
    _set_state(domain, "disable", force_flag=force_flag, question=question, confirm_flag=confirm_flag)


@click.command(name="migrate")
@domain_argument
@target_option
@click.option(
    "-f",
    "--force",
    "force_flag",
    is_flag=True,
    default=False,
    help="Migrate even if the VM is already migrated (the new node becomes its last node).",
)
@wait_option
@force_live_option
def vm_migrate(
    domain: str, target_node: str | None, force_flag: bool, wait_flag: bool, force_live_flag: bool
) -> None:
    """Migrate VM DOMAIN to another node for now, remembering its node for 'unmigrate'."""
    _place(domain, "migrate", target_node, force_flag, wait_flag, force_live_flag)


@click.command(name="move")
@domain_argument
@target_option
@wait_option
@force_live_option
def vm_move(domain: str, target_node: str | None, wait_flag: bool, force_live_flag: bool) -> None:
    """Move VM DOMAIN to another node for good."""
    _place(domain, "move", target_node, wait_flag=wait_flag, force_live_flag=force_live_flag)


@click.command(name="unmigrate")
@domain_argument
@wait_option
@force_live_option
def vm_unmigrate(domain: str, wait_flag: bool, force_live_flag: bool) -> None:
    """Migrate VM DOMAIN back to the node it was migrated from."""
    _place(domain, "unmigrate", wait_flag=wait_flag, force_live_flag=force_live_flag)
