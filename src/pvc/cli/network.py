"""``pvc network``: client networks, their DHCP reservations and leases, their ACLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import RenderableType

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.network_views import acl_list_pretty, lease_list_pretty, network_info_pretty, network_list_pretty
from pvc.cli.output import emit_data, emit_lines, format_option
from pvc.cli.vm_common import emit_reply
from pvc.client.http import Params, segment

list_format_option = format_option("pretty", "raw", "json", "json-pretty")


def net_path(net: str, *parts: str) -> str:
    """The API path of network ``net`` (``/network/<net>``), or of one of its sub-resources."""
    return "/".join([f"/network/{segment(net)}", *(segment(part) for part in parts)])


def fetch_list(path: str, params: Params = None) -> list[dict[str, Any]]:
    """A list the API returns at ``path``."""
    data = options().client().get(path, params=params).expect(200)
    if data is None:
        return []
    if not isinstance(data, list):
        raise CliError(f"Unexpected reply from the API for {path}")
    return [item for item in data if isinstance(item, dict)]


def _emit_list(
    items: list[dict[str, Any]], output_format: str, raw_key: str, pretty: Callable[[Any], RenderableType]
) -> None:
    """Print a fetched list: one ``raw_key`` value a line for ``raw``, else as ``output_format`` asks."""
    if output_format == "raw":
        emit_lines(item.get(raw_key) for item in items)
        return
    emit_data(items, output_format, pretty)


def _remove(path: str, question: str, confirm_flag: bool) -> None:
    """Delete ``path`` once the user confirms ``question`` (or ``--yes`` was given)."""
    cli = options()
    client = cli.client()
    confirm(question, confirm_flag)
    emit_reply(cli, client.delete(path))


def _settings_options(dhcp_default: bool | None, dhcp_help: str) -> Callable[[Any], Any]:
    """The options ``network add`` and ``network modify`` share (in the v1 order)."""
    options = [
        click.option("-n", "--domain", "domain", default=None, help="DNS domain of the network's clients."),
        click.option(
            "--dns-server",
            "name_servers",
            multiple=True,
            default=None,
            help="Name server handed out by DHCP; repeat for more.",
        ),
        click.option("-i", "--ipnet", "ip4_network", default=None, help="IPv4 subnet in CIDR form."),
        click.option("-i6", "--ipnet6", "ip6_network", default=None, help="IPv6 prefix in CIDR form."),
        click.option("-g", "--gateway", "ip4_gateway", default=None, help="IPv4 gateway address."),
        click.option("-g6", "--gateway6", "ip6_gateway", default=None, help="IPv6 gateway address."),
        click.option("--dhcp/--no-dhcp", "dhcp_flag", default=dhcp_default, help=dhcp_help),
        click.option("--dhcp-start", "dhcp_start", default=None, help="First address DHCPv4 hands out."),
        click.option("--dhcp-end", "dhcp_end", default=None, help="Last address DHCPv4 hands out."),
    ]

    def decorate(func: Any) -> Any:
        for decorator in reversed(options):
            func = decorator(func)
        return func

    return decorate


@click.group(name="network")
def network() -> None:
    """Manage client networks."""


@network.command(name="add")
@click.option("-d", "--description", "description", required=True, help="Name of the network (unique).")
@click.option(
    "-p", "--type", "nettype", type=click.Choice(["managed", "bridged"]), required=True, help="Network type."
)
@click.option("-m", "--mtu", "mtu", default="", help="MTU, 576-9000 (default: the nodes' device's).")
@_settings_options(dhcp_default=False, dhcp_help="Serve DHCPv4.")
@click.argument("vni")
def network_add(
    description: str,
    nettype: str,
    mtu: str,
    domain: str | None,
    name_servers: tuple[str, ...],
    ip4_network: str | None,
    ip6_network: str | None,
    ip4_gateway: str | None,
    ip6_gateway: str | None,
    dhcp_flag: bool,
    dhcp_start: str | None,
    dhcp_end: str | None,
    vni: str,
) -> None:
    """Add client network VNI (a VLAN id, 1-4094, for a bridged network)."""
    cli = options()
    params = {
        "vni": vni,
        "description": description,
        "nettype": nettype,
        "mtu": mtu,
        "domain": domain,
        "name_servers": name_servers,
        "ip4_network": ip4_network,
        "ip4_gateway": ip4_gateway,
        "ip6_network": ip6_network,
        "ip6_gateway": ip6_gateway,
        "dhcp4": dhcp_flag,
        "dhcp4_start": dhcp_start,
        "dhcp4_end": dhcp_end,
    }
    emit_reply(cli, cli.client().post("/network", params=params))


@network.command(name="modify")
@click.option("-d", "--description", "description", default=None, help="New name of the network.")
@click.option("-m", "--mtu", "mtu", default=None, help="MTU, 576-9000; empty for the nodes' default.")
@_settings_options(dhcp_default=None, dhcp_help="Serve DHCPv4 (or stop).")
@click.argument("vni")
def network_modify(
    description: str | None,
    mtu: str | None,
    domain: str | None,
    name_servers: tuple[str, ...],
    ip4_network: str | None,
    ip6_network: str | None,
    ip4_gateway: str | None,
    ip6_gateway: str | None,
    dhcp_flag: bool | None,
    dhcp_start: str | None,
    dhcp_end: str | None,
    vni: str,
) -> None:
    """Change client network VNI: each option given replaces that setting (an empty value clears it)."""
    cli = options()
    params = {
        "description": description,
        "mtu": mtu,
        "domain": domain,
        "name_servers": name_servers or None,
        "ip4_network": ip4_network,
        "ip4_gateway": ip4_gateway,
        "ip6_network": ip6_network,
        "ip6_gateway": ip6_gateway,
        "dhcp4": dhcp_flag,
        "dhcp4_start": dhcp_start,
        "dhcp4_end": dhcp_end,
    }
    emit_reply(cli, cli.client().put(net_path(vni), params=params))


@network.command(name="remove")
@click.argument("net")
@yes_option
def network_remove(net: str, confirm_flag: bool) -> None:
    """Remove client network NET with its DHCP reservations, leases and ACLs."""
    _remove(net_path(net), f"Remove network {net} with its DHCP reservations and ACLs", confirm_flag)


@network.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def network_list(limit: str | None, output_format: str) -> None:
    """List client networks, optionally only those whose VNI or description matches LIMIT."""
    networks = fetch_list("/network", {"limit": limit})
    _emit_list(networks, output_format, "vni", network_list_pretty)


@network.command(name="info")
@click.argument("vni")
@format_option("pretty", "long", "json", "json-pretty")
def network_info(vni: str, output_format: str) -> None:
    """Show client network VNI (with ``long``, also its ACLs and leases)."""
    client = options().client()
    net = client.get(net_path(vni)).expect_one(f"Network {vni}")
    if output_format == "long":
        acls = fetch_list(net_path(vni, "acl"))
        leases = fetch_list(net_path(vni, "lease"))
        emit_data(net, output_format, lambda data: network_info_pretty(data, acls, leases))
        return
    emit_data(net, output_format, network_info_pretty)


# -- DHCP ------------------------------------------------------------------------------------


@network.group(name="dhcp")
def network_dhcp() -> None:
    """Manage DHCP reservations (static leases) of a managed network."""


@network_dhcp.command(name="add")
@click.argument("net")
@click.argument("ipaddr")
@click.argument("hostname")
@click.argument("macaddr")
def network_dhcp_add(net: str, ipaddr: str, hostname: str, macaddr: str) -> None:
    """Reserve IPADDR with HOSTNAME for MACADDR on network NET."""
    cli = options()
    params = {"macaddress": macaddr, "ipaddress": ipaddr, "hostname": hostname}
    emit_reply(cli, cli.client().post(net_path(net, "lease"), params=params))


@network_dhcp.command(name="list")
@click.argument("net")
@click.argument("limit", required=False, default=None)
@click.option("-s", "--static", "only_static", is_flag=True, default=False, help="Reservations only.")
@list_format_option
def network_dhcp_list(net: str, limit: str | None, only_static: bool, output_format: str) -> None:
    """List the DHCP reservations and leases of network NET (those matching LIMIT)."""
    leases = fetch_list(net_path(net, "lease"), {"limit": limit, "static": only_static})
    _emit_list(leases, output_format, "ip4_address", lease_list_pretty)


@network_dhcp.command(name="remove")
@click.argument("net")
@click.argument("macaddr")
@yes_option
def network_dhcp_remove(net: str, macaddr: str, confirm_flag: bool) -> None:
    """Remove the DHCP reservation of MACADDR from network NET."""
    question = f"Remove the DHCP reservation of {macaddr} from network {net}"
    _remove(net_path(net, "lease", macaddr), question, confirm_flag)


# -- ACLs ------------------------------------------------------------------------------------


@network.group(name="acl")
def network_acl() -> None:
    """Manage the firewall rules (ACLs) of a managed network."""


@network_acl.command(name="add")
@click.option("--in/--out", "direction", default=True, help="Traffic into the network, or out of it.")
@click.option("-d", "--description", "description", required=True, help="Name of the rule (unique).")
@click.option("-r", "--rule", "rule", required=True, help="One nftables rule, e.g. 'tcp dport 22 accept'.")
@click.option(
    "-o", "--order", "order", default=None, help="Its place among the rules, from 1 (default: last)."
)
@click.argument("net")
def network_acl_add(direction: bool, description: str, rule: str, order: str | None, net: str) -> None:
    """Add an ACL to network NET."""
    cli = options()
    params = {
        "description": description,
        "direction": "in" if direction else "out",
        "rule": rule,
        "order": order,
    }
    emit_reply(cli, cli.client().post(net_path(net, "acl"), params=params))


@network_acl.command(name="list")
@click.option("--in/--out", "direction", default=None, help="Only the rules of one direction.")
@click.argument("net")
@click.argument("limit", required=False, default=None)
@list_format_option
def network_acl_list(direction: bool | None, net: str, limit: str | None, output_format: str) -> None:
    """List the ACLs of network NET (those whose description matches LIMIT)."""
    wanted = None if direction is None else ("in" if direction else "out")
    acls = fetch_list(net_path(net, "acl"), {"limit": limit, "direction": wanted})
    _emit_list(acls, output_format, "description", acl_list_pretty)


@network_acl.command(name="remove")
@click.argument("net")
@click.argument("rule")
@yes_option
def network_acl_remove(net: str, rule: str, confirm_flag: bool) -> None:
    """Remove the ACL described RULE from network NET."""
    _remove(net_path(net, "acl", rule), f"Remove ACL {rule} from network {net}", confirm_flag)
