"""Settings clients ask of a VF: checked, merged with what was asked before, and recorded for
the VF's node to apply (see :mod:`pvc.cluster.sriov.node`)."""

from __future__ import annotations

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import queries
from pvc.net.sriov import LINK_STATES, QOS_MAX, VLAN_MAX
from pvc.state import sriov as records
from pvc.state.sriov import VfConfig

#: The settings a client may ask of a VF, in the order messages list them.
SETTINGS = (
    "vlan_id",
    "vlan_qos",
    "tx_rate_min",
    "tx_rate_max",
    "spoof_check",
    "link_state",
    "trust",
    "query_rss",
)
__all__ = ["LINK_STATES", "SETTINGS", "check_config", "set_vf_config"]


def check_config(config: VfConfig) -> None:
    """ClusterError naming every setting of ``config`` that is out of its range.

    VLAN 0 to 4094 (0: untagged), QoS 0 to 7, rates in Mbit/s not negative with the minimum
    not above a maximum that limits (a maximum of 0 means no limit), a link state of auto,
    enable or disable.
    """
    problems = []
    if config.vlan_id is not None and not 0 <= config.vlan_id <= VLAN_MAX:
        problems.append(f"vlan_id must be 0 to {VLAN_MAX}, not {config.vlan_id}")
    if config.vlan_qos is not None and not 0 <= config.vlan_qos <= QOS_MAX:
        problems.append(f"vlan_qos must be 0 to {QOS_MAX}, not {config.vlan_qos}")
    for name in ("tx_rate_min", "tx_rate_max"):
        value = getattr(config, name)
        if value is not None and value < 0:
            problems.append(f"{name} must not be negative, not {value}")
    low, high = config.tx_rate_min, config.tx_rate_max
    if low is not None and high and low > high:
        problems.append(f"tx_rate_min ({low}) must not exceed tx_rate_max ({high}; 0 means no limit)")
    if config.link_state is not None and config.link_state not in LINK_STATES:
        problems.append(f"link_state must be one of {', '.join(LINK_STATES)}, not '{config.link_state}'")
    if problems:
        raise ClusterError("Invalid VF configuration: " + "; ".join(problems))


def set_vf_config(cluster: Cluster, node: str, vf: str, **given: int | bool | str | None) -> str:
    """Ask for settings of VF ``vf`` of ``node`` (those given, not None); returns the reply.

    NotFoundError for an unknown node or VF; ClusterError when nothing is given or a setting,
    taken together with what was asked before and what the VF has, is out of range.
    """
    unknown = set(given) - set(SETTINGS)
    if unknown:
        raise ClusterError(f"Unknown VF settings: {', '.join(sorted(unknown))}")
    asked = {name: value for name, value in given.items() if value is not None}
    if not asked:
        raise ClusterError(f"No VF setting given: give at least one of {', '.join(SETTINGS)}")
    function = queries.vf(cluster, node, vf)
    check_config(VfConfig(**asked))

    def merge(current: VfConfig) -> VfConfig:
        merged = VfConfig(**{**current.given(), **asked})
        check_config(queries.effective_config(function, merged))
        return merged

    _, commit = records.update_vf_config(cluster.store, node, vf, merge)
    cluster.settle(commit)
    changes = ", ".join(f"{name}={asked[name]}" for name in SETTINGS if name in asked)
    return f"Set VF '{vf}' on node '{node}' to {changes}; the node applies it"
