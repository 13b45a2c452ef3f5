"""The root ``pvc`` group: global options, version, and the command groups."""

from __future__ import annotations

import click

from pvc import __version__
from pvc.cli.cluster import cluster
from pvc.cli.connection import connection
from pvc.cli.context import CliContext, CliError
from pvc.cli.network import network
from pvc.cli.network_sriov import sriov
from pvc.cli.node import node
from pvc.cli.provisioner_library import provisioner
from pvc.cli.provisioner_ova import ova as _ova  # noqa: F401  (registers 'pvc provisioner ova')
from pvc.cli.storage import storage
from pvc.cli.vm import vm
from pvc.client.errors import ClientError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


class PvcGroup(click.Group):
    """The root group: turns client failures (API, connection store) anywhere below it into one-line
    errors."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, converting expected failures into :class:`CliError`."""
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            raise CliError(str(exc)) from exc


@click.group(cls=PvcGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "-c",
    "--connection",
    "_connection",
    envvar="PVC_CONNECTION",
    default=None,
    help="Connection from the store to use (default: the store's default connection, else local).",
)
@click.option(
    "-v",
    "--debug",
    "_debug",
    envvar="PVC_DEBUG",
    is_flag=True,
    default=False,
    help="Print each API call's endpoint, status and headers to stderr.",
)
@click.option(
    "-q",
    "--quiet",
    "_quiet",
    envvar="PVC_QUIET",
    is_flag=True,
    default=False,
    help="Suppress output on stderr (the connection banner, progress).",
)
@click.option(
    "-s",
    "--silent",
    "_silent",
    envvar="PVC_SILENT",
    is_flag=True,
    default=False,
    help="Suppress all output on stdout and stderr.",
)
@click.option(
    "-u",
    "--unsafe",
    "_unsafe",
    envvar="PVC_UNSAFE",
    is_flag=True,
    default=False,
    help="Skip all confirmations (as if --yes were given).",
)
@click.option(
    "--colour",
    "--color",
    "_colour",
    envvar="PVC_COLOUR",
    is_flag=True,
    default=False,
    help="Use colour even when the output is not a terminal.",
)
@click.version_option(
    __version__,
    "--version",
    package_name="pvc",
    message="Parallel Virtual Cluster CLI client version %(version)s",
    help="Show the version and exit.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    _connection: str | None,
    _debug: bool,
    _quiet: bool,
    _silent: bool,
    _unsafe: bool,
    _colour: bool,
) -> None:
    """Parallel Virtual Cluster command-line client."""
    ctx.obj = CliContext(
        connection_name=_connection or None,
        debug=_debug,
        quiet=_quiet,
        silent=_silent,
        unsafe=_unsafe,
        colour=_colour,
    )


network.add_command(sriov)

cli.add_command(cluster)
cli.add_command(connection)
cli.add_command(network)
cli.add_command(node)
cli.add_command(provisioner)
cli.add_command(storage)
cli.add_command(vm)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="pvc")


if __name__ == "__main__":
    main()
