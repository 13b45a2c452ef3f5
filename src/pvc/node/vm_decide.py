"""What a node daemon does about one VM: a pure decision from the VM's record and libvirt.

:func:`decide` looks at the VM's desired state and placement, whether this node's
libvirt runs it, and which nodes are alive, and names at most one action. The
manager (:mod:`pvc.node.vm_manager`) carries actions out; because decisions are
level-triggered, a missed event or a daemon restart only delays the right action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pvc.state.states import VM_MIGRATING, VM_RUNNING, VMState
from pvc.state.vms import VmRecord


class Act(StrEnum):
    """Actions on one VM."""

    START = "start"  # start it here
    RECOVER = "recover"  # it died here unexpectedly: start it again (counted, with backoff)
    GUEST_STOPPED = "guest-stopped"  # the guest powered itself off: record it as stopped
    ADOPT = "adopt"  # it runs here: record that
    FINISH_MIGRATION = "finish-migration"  # it arrived here: record the migration as done
    MIGRATE = "migrate"  # it runs here but belongs elsewhere: send it there
    RESTART = "restart"  # shut it down and start it again here
    SHUTDOWN = "shutdown"  # ACPI shutdown (then power off after the timeout)
    POWER_OFF = "power-off"  # stop at once
    MARK_STOPPED = "mark-stopped"  # a shutdown was asked for but it is not running: record stop
    FORGET = "forget"  # the record says it runs here but it does not: clear that


@dataclass(frozen=True)
class Decision:
    act: Act
    reason: str


def decide(
    vm: VmRecord, me: str, *, here: bool, alive: set[str], guest_stopped: bool = False
) -> Decision | None:
    """The one thing node ``me`` should do about ``vm`` now, or None.

    ``here``: this node's libvirt runs the VM. ``alive``: nodes whose daemons run.
    ``guest_stopped``: libvirt reported that the guest shut itself down here.
    """
    placement = vm.placement
    state = placement.state
    running_elsewhere = placement.running_on not in ("", me) and placement.running_on in alive

    if placement.node != me:
        if not here:
            if placement.running_on == me:
                return Decision(Act.FORGET, "recorded as running here, but libvirt does not run it")
            return None
        if state in VM_RUNNING:
            return Decision(Act.MIGRATE, f"it belongs to node {placement.node}")
        return _stop_for(state, placement.hard)

    # The VM belongs here.
    if state in (VMState.START, *VM_MIGRATING):
        if here:
            if state in VM_MIGRATING:
                return Decision(Act.FINISH_MIGRATION, "it runs here")
            if placement.running_on != me:
                return Decision(Act.ADOPT, "it runs here")
            return None
        if running_elsewhere:
            return None  # its old node still runs it (a migration or shutdown in progress)
        if placement.running_on == me and state == VMState.START:
            if guest_stopped:
                return Decision(Act.GUEST_STOPPED, "the guest powered itself off")
            return Decision(Act.RECOVER, "its QEMU process is gone")
        return Decision(Act.START, "it should run here")
    if state == VMState.RESTART:
        if here:
            return Decision(Act.RESTART, "a restart was asked for")
        return None if running_elsewhere else Decision(Act.START, "a restart was asked for")
    if here:
        return _stop_for(state, placement.hard)
    if state == VMState.SHUTDOWN:
        if running_elsewhere:
            return None  # the node that runs it shuts it down and records the stop
        return Decision(Act.MARK_STOPPED, "it is not running")
    if placement.running_on == me:
        return Decision(Act.FORGET, "recorded as running here, but libvirt does not run it")
    return None


def _stop_for(state: str, hard: bool) -> Decision | None:
    """How a VM in a not-running state that runs here is stopped."""
    if state == VMState.STOP or (state == VMState.DISABLE and hard):
        return Decision(Act.POWER_OFF, f"its state is {state}")
    if state in (VMState.SHUTDOWN, VMState.DISABLE):
        return Decision(Act.SHUTDOWN, f"its state is {state}")
    return None  # fail, provision, mirror: leave a running guest alone
