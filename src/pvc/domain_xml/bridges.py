"""How PVC names the host bridge that carries a network.

A VM joins PVC network VNI through the host bridge ``vmbr<VNI>``; the networks subsystem
creates bridges by the same rule. The short form ``br<VNI>`` is read as the same network.
"""

from __future__ import annotations

import re

#: Prefix of the bridge PVC makes for a network (``vmbr100`` carries VNI 100).
BRIDGE_PREFIX = "vmbr"
_NETWORK_BRIDGE = re.compile(r"(?:vmbr|br)(\d+)")


def bridge_name(vni: int | str) -> str:
    """The host bridge of PVC network ``vni``."""
    return f"{BRIDGE_PREFIX}{vni}"


def vni_of_bridge(bridge: str) -> int | None:
    """The VNI of a PVC network bridge, or None for any other bridge."""
    match = _NETWORK_BRIDGE.fullmatch(bridge)
    return int(match.group(1)) if match else None
