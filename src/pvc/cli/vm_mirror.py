"""``pvc vm mirror create|promote``: keep a VM's mirror on another cluster, and hand the VM
over to it (tasks on the primary)."""

from __future__ import annotations

from typing import Any

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.vm_common import cron_option, domain_argument, run_scheduled, run_task, vm_path, wait_option
from pvc.client.connections import resolve_connection
from pvc.client.errors import ConnectionStoreError

destination_argument = click.argument("destination")
key_option = click.option(
    "-k", "--destination-api-key", "destination_api_key", help="An API key of the destination."
)
pool_option = click.option(
    "-p", "--destination-pool", "destination_pool", help="The destination's pool (default: the same)."
)


def destination_params(destination: str, key: str | None, pool: str | None) -> dict[str, Any]:
    """The ``destination_*`` parameters for DESTINATION: a connection in the store (its key
    is used unless one is given) or the destination's API URI (which needs a key)."""
    if "://" not in destination:
        try:
            found = resolve_connection(destination)
        except ConnectionStoreError as error:
            raise CliError(f"{error}; or give the destination's API URI and --destination-api-key") from None
        if not (key or found.api_key):
            raise CliError(f"connection {destination} has no API key: give --destination-api-key")
        uri, key, verify = found.base_url, key or found.api_key or "", found.verify_ssl
    elif not key:
        raise CliError("a destination given by URI needs --destination-api-key")
    else:
        uri, verify = destination, True
    params: dict[str, Any] = {
        "destination_api_uri": uri,
        "destination_api_key": key,
        "destination_api_verify_ssl": verify,
    }
    if pool:
        params["destination_storage_pool"] = pool
    return params


@click.group(name="mirror")
def vm_mirror() -> None:
    """Keep a mirror of a VM on another cluster, and promote it there."""


@vm_mirror.command(name="create")
@domain_argument
@destination_argument
@key_option
@pool_option
@wait_option
def vm_mirror_create(
    domain: str,
    destination: str,
    destination_api_key: str | None,
    destination_pool: str | None,
    wait_flag: bool,
) -> None:
    """Snapshot VM DOMAIN and send it to DESTINATION, where it is (or becomes) a mirror: the
    whole VM the first time, then the changes since the last snapshot both have.

    DESTINATION is a connection in the store or the destination's API URI, like
    https://host:7370/api/v1.
    """
    params = destination_params(destination, destination_api_key, destination_pool)
    cli = options()
    client = cli.client()
    # the key goes in the form body, not the URL (which servers log)
    run_task(cli, client, client.post(vm_path(domain, "mirror", "create"), data=params), wait_flag)


@vm_mirror.command(name="promote")
@domain_argument
@destination_argument
@key_option
@pool_option
@click.option(
    "--remove/--no-remove",
    "remove_flag",
    default=False,
    show_default=True,
    help="Remove the VM and its volumes here, or keep it here as a mirror of the destination's.",
)
@wait_option
@yes_option
def vm_mirror_promote(
    domain: str,
    destination: str,
    destination_api_key: str | None,
    destination_pool: str | None,
    remove_flag: bool,
    wait_flag: bool,
    confirm_flag: bool,
) -> None:
    """Hand VM DOMAIN over to DESTINATION: shut it down here, send its last snapshot, and
    have the destination run it in the state it had here."""
    params = destination_params(destination, destination_api_key, destination_pool)
    then = "remove it and its volumes here" if remove_flag else "keep it here as a mirror"
    confirm(
        f"Shut down VM {domain}, promote its mirror on {params['destination_api_uri']} and {then}",
        confirm_flag,
    )
    params["remove_on_source"] = remove_flag
    cli = options()
    client = cli.client()
    run_task(cli, client, client.post(vm_path(domain, "mirror", "promote"), data=params), wait_flag)


@click.command(name="automirror")
@click.option("--email-report", "email_report", help="Mail the report to these addresses (comma-separated).")
@click.option(
    "--email-errors-only",
    "email_errors_only",
    is_flag=True,
    default=False,
    help="Mail only when a VM failed.",
)
@wait_option
@cron_option
def vm_automirror(
    email_report: str | None, email_errors_only: bool, wait_flag: bool, cron_flag: bool
) -> None:
    """Send a new mirror snapshot of every VM with an automirror tag now, as configured in
    backup.automirror (old mirror snapshots removed on both sides)."""
    params: dict[str, object] = {"email_errors_only": email_errors_only}
    if email_report:
        params["email_recipients"] = email_report
    cli = options()
    run_scheduled(cli, cli.client(), "/vm/automirror", params, wait_flag, cron_flag)
