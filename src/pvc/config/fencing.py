"""Fencing settings: how a node is reached over IPMI, and what peers do when it dies.

The timing keys stay in ``timers`` (``keepalive_interval``, ``fence_intervals``,
``suicide_intervals``); their invariants are checked on the whole configuration
(:func:`timing_problem`), since they involve ZooKeeper's session timeout too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from pvc.config.base import _Section

#: Extra keepalive intervals, after a node is declared dead, in which a keepalive from it
#: still cancels its fence.
DEFAULT_SAVING_THROWS = 1
#: Seconds one ipmitool call may take before the BMC counts as unreachable.
DEFAULT_IPMI_TIMEOUT = 3.0
#: Seconds between "power off" and the check that the node is off (and between "power on"
#: and its check).
DEFAULT_POWER_OFF_WAIT = 1.0
DEFAULT_POWER_ON_WAIT = 2.0
#: Seconds a self-fencing node is allowed to take to stop its VMs: its peers must not be
#: able to start them again before it has (see :func:`timing_problem`).
SELF_FENCE_STOP_ALLOWANCE = 2.0

FenceAction = Literal["migrate", "none"]


class IpmiSection(_Section):
    """This node's BMC, as its peers reach it to fence it (recorded in the cluster at start)."""

    host: str | None = Field(None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")
    port: int = Field(623, ge=1, le=65535)
    user: str | None = Field(None, min_length=1, max_length=64)
    #: IPMI v2 passwords are at most 20 bytes.
    password: str | None = Field(None, min_length=1, max_length=20, repr=False)

    @property
    def complete(self) -> bool:
        """Host, user and password are all set: peers can fence this node."""
        return bool(self.host and self.user and self.password)


class FenceActions(_Section):
    """What the fencing node does with a dead node's VMs, by outcome of the fence."""

    successful_fence: FenceAction = "migrate"
    failed_fence: FenceAction = "none"


class FencingSection(_Section):
    ipmi: IpmiSection = IpmiSection()
    actions: FenceActions = FenceActions()
    saving_throws: int = Field(DEFAULT_SAVING_THROWS, ge=0, le=60)
    ipmi_timeout: float = Field(DEFAULT_IPMI_TIMEOUT, gt=0, le=60)
    power_off_wait: float = Field(DEFAULT_POWER_OFF_WAIT, ge=0, le=60)
    power_on_wait: float = Field(DEFAULT_POWER_ON_WAIT, ge=0, le=60)
    #: The hardware watchdog armed while the daemon runs (reset if the daemon hangs);
    #: null disables it. A missing device is reported at start, not an error.
    watchdog: Path | None = Path("/dev/watchdog")
