"""Checked writes of a network's ACLs (firewall rules).

ACLs are kept in order within each direction: orders are always 1..n. An ACL added or moved to
order k takes that place and the ones from k on move down one; one removed or moved away
closes its gap. A rule's text is checked by :func:`.rules.checked_rule`, with the caller's
``rule_checker`` (the firewall adapter's ``nft --check``) when it gives one.
"""

from __future__ import annotations

from dataclasses import replace

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.network import validation
from pvc.cluster.network.actions import checked_write
from pvc.cluster.network.queries import resolve
from pvc.cluster.network.rules import RuleChecker, checked_rule
from pvc.cluster.session import Cluster
from pvc.state import networks as records
from pvc.state.networks import DIRECTIONS, IN, Acl, StoreReader
from pvc.state.store import Commit


def arrange(acls: list[Acl], description: str, wanted: Acl | None, order: int | None) -> list[Acl]:
    """The ACLs after ``description`` is removed and, with ``wanted``, put back at ``order``
    within its direction (None or beyond the end: last); orders renumbered 1..n per direction."""
    remaining = [acl for acl in acls if acl.description != description]
    arranged: list[Acl] = []
    for direction in DIRECTIONS:
        same = sorted((a for a in remaining if a.direction == direction), key=lambda a: a.order)
        if wanted is not None and wanted.direction == direction:
            place = len(same) + 1 if order is None else min(order, len(same) + 1)
            same.insert(place - 1, wanted)
        arranged += [replace(acl, order=index) for index, acl in enumerate(same, start=1)]
    return arranged


def _change(cluster: Cluster, net: int | str, description: str, decide) -> tuple[int, Acl | None]:
    """Apply ``decide(acls, current)`` -> (wanted ACL or None to remove, order) to a network's ACLs."""
    vni = resolve(cluster.cache, net).vni
    result: list[Acl | None] = [None]

    def write(reader: StoreReader) -> Commit:
        versions = records.read_versions(reader, vni)  # before the reads they vouch for
        if records.read_network(reader, vni) is None:
            raise NotFoundError(f"Network '{net}' not found")
        acls = records.read_acls(reader, vni)
        current = next((acl for acl in acls if acl.description == description), None)
        wanted, order = decide(acls, current)
        arranged = arrange(acls, description, wanted, order)
        before = {acl.description: acl for acl in acls}
        after = {acl.description: acl for acl in arranged}
        result[0] = after.get(description)
        return records.write_acls(
            cluster.store,
            vni,
            versions,
            put=[acl for name, acl in after.items() if before.get(name) != acl],
            existing=before,
            delete=[name for name in before if name not in after],
        )

    checked_write(cluster, write, f"The ACLs of network {vni}")
    return vni, result[0]


def add_acl(
    cluster: Cluster,
    net: int | str,
    description: str,
    rule: str,
    *,
    direction: str = IN,
    order: int | str | None = None,
    rule_checker: RuleChecker | None = None,
) -> str:
    """Add an ACL at ``order`` within ``direction`` (default last); 400 when the network has an
    ACL of that description already."""
    validation.check_description(description, "ACL description")
    validation.check_acl_direction(direction)
    place = validation.parse_order(order)
    text = checked_rule(rule, rule_checker)

    def decide(_: list[Acl], current: Acl | None) -> tuple[Acl, int | None]:
        if current is not None:
            raise ClusterError(f"The network has an ACL '{description}' already ({current.direction})")
        return Acl(description=description, direction=direction, order=0, rule=text), place

    vni, acl = _change(cluster, net, description, decide)
    assert acl is not None
    return f"Added ACL '{description}' to network {vni} ({direction}, order {acl.order})"


def modify_acl(
    cluster: Cluster,
    net: int | str,
    description: str,
    *,
    rule: str | None = None,
    direction: str | None = None,
    order: int | str | None = None,
    rule_checker: RuleChecker | None = None,
) -> str:
    """Change an ACL's rule, direction or order (None keeps each; moved to another direction
    without an order it goes last there); 404 when there is none."""
    if direction is not None:
        validation.check_acl_direction(direction)
    place = validation.parse_order(order)
    text = None if rule is None else checked_rule(rule, rule_checker)

    def decide(_: list[Acl], current: Acl | None) -> tuple[Acl, int | None]:
        if current is None:
            raise NotFoundError(f"The network has no ACL '{description}'")
        moved = direction is not None and direction != current.direction
        wanted = replace(
            current,
            rule=current.rule if text is None else text,
            direction=direction if moved else current.direction,
        )
        return wanted, place if place is not None or moved else current.order

    vni, acl = _change(cluster, net, description, decide)
    assert acl is not None
    return f"Modified ACL '{description}' of network {vni} ({acl.direction}, order {acl.order})"


def set_acl(
    cluster: Cluster,
    net: int | str,
    description: str,
    rule: str,
    *,
    direction: str = IN,
    order: int | str | None = None,
    rule_checker: RuleChecker | None = None,
) -> str:
    """Add the ACL ``description``, or replace its rule, direction and order when it exists."""
    network = resolve(cluster.cache, net)
    present = any(acl.description == description for acl in records.read_acls(cluster.cache, network.vni))
    if present:
        return modify_acl(
            cluster, net, description, rule=rule, direction=direction, order=order, rule_checker=rule_checker
        )
    return add_acl(
        cluster, net, description, rule, direction=direction, order=order, rule_checker=rule_checker
    )


def remove_acl(cluster: Cluster, net: int | str, description: str) -> str:
    """Remove an ACL (the others of its direction close the gap); 404 when there is none."""

    def decide(_: list[Acl], current: Acl | None) -> tuple[None, None]:
        if current is None:
            raise NotFoundError(f"The network has no ACL '{description}'")
        return None, None

    vni, _ = _change(cluster, net, description, decide)
    return f"Removed ACL '{description}' from network {vni}"
