"""Pool tiers: which OSDs hold a pool's data.

``default`` uses the cluster's default CRUSH rule (every OSD); ``hdd``, ``ssd`` and ``nvme``
use a rule named ``<tier>_tier`` that takes only the OSDs of that device class. This module
holds only these names (no Ceph imports), so clients can offer the same choices.
"""

from __future__ import annotations

DEFAULT_TIER = "default"
#: Pool tiers: the default rule, or the OSDs of one device class.
TIERS = (DEFAULT_TIER, "hdd", "ssd", "nvme")
#: Device classes an OSD can be given (every tier but the default).
DEVICE_CLASSES = TIERS[1:]
TIER_RULE_SUFFIX = "_tier"


def check_tier(tier: str) -> str:
    """The tier if PVC knows it, else ValueError."""
    if tier not in TIERS:
        raise ValueError(f"invalid tier {tier!r}: use one of {', '.join(TIERS)}")
    return tier


def check_device_class(device_class: str) -> str:
    """The device class if it is one a tier can select, else ValueError."""
    if device_class not in DEVICE_CLASSES:
        raise ValueError(f"invalid device class {device_class!r}: use one of {', '.join(DEVICE_CLASSES)}")
    return device_class


def tier_rule_name(tier: str) -> str:
    """The CRUSH rule of a non-default tier."""
    return f"{tier}{TIER_RULE_SUFFIX}"


def tier_of_rule(rule_name: str) -> str:
    """The tier a CRUSH rule stands for (any rule PVC did not make counts as default)."""
    tier = rule_name.removesuffix(TIER_RULE_SUFFIX)
    if rule_name.endswith(TIER_RULE_SUFFIX) and tier in DEVICE_CLASSES:
        return tier
    return DEFAULT_TIER
