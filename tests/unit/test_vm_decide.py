"""decide(): what one node daemon does about one VM, for every branch and the safety rules."""

import itertools
from dataclasses import replace

import pytest

from pvc.node.vm_decide import Act, Decision, decide
from pvc.state.states import VMState
from pvc.state.vms import VmMeta, VmPlacement, VmRecord

ME = "hv1"
OTHER = "hv2"  # alive
DEAD = "hv3"  # not alive
ALIVE = frozenset({ME, OTHER, "hv4"})
NOWHERE = ""


def vm(state: str, node: str = ME, running_on: str = NOWHERE, hard: bool = False) -> VmRecord:
    return VmRecord(
        uuid="0f8fad5b-d9cb-469f-a165-70867728950e",
        meta=VmMeta(name="vm1", uuid="0f8fad5b-d9cb-469f-a165-70867728950e", vcpus=2, memory_mib=1024),
        placement=VmPlacement(state=state, node=node, last_node="", running_on=running_on, hard=hard),
        xml="<domain/>",
    )


def act(
    state: str,
    *,
    node: str = ME,
    running_on: str = NOWHERE,
    here: bool,
    hard: bool = False,
    guest_stopped: bool = False,
) -> Act | None:
    decision = decide(
        vm(state, node, running_on, hard), ME, here=here, alive=set(ALIVE), guest_stopped=guest_stopped
    )
    if decision is not None:
        assert isinstance(decision, Decision)
        assert decision.reason  # every action says why
    return None if decision is None else decision.act


S = VMState
RUNNING_STATES = (S.START, S.RESTART, S.MIGRATE, S.MIGRATE_LIVE)
NOT_RUNNING_STATES = (S.SHUTDOWN, S.STOP, S.DISABLE, S.FAIL, S.PROVISION, S.MIRROR, S.IMPORT)
HANDS_OFF_STATES = (S.FAIL, S.PROVISION, S.MIRROR, S.IMPORT)

# (state, node, running_on, here, hard, guest_stopped, expected)
CASES = {
    # --- assigned elsewhere, libvirt does not run it here ---------------------------------------
    "elsewhere/absent/recorded-here/start": (S.START, OTHER, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-here/stop": (S.STOP, OTHER, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-here/fail": (S.FAIL, OTHER, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-here/mirror": (S.MIRROR, OTHER, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-here/import": (S.IMPORT, OTHER, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-here/dead-owner": (S.START, DEAD, ME, False, False, False, Act.FORGET),
    "elsewhere/absent/recorded-nowhere/start": (S.START, OTHER, NOWHERE, False, False, False, None),
    "elsewhere/absent/recorded-other/start": (S.START, OTHER, OTHER, False, False, False, None),
    "elsewhere/absent/recorded-dead/start": (S.START, OTHER, DEAD, False, False, False, None),
    "elsewhere/absent/owner-dead/start": (S.START, DEAD, DEAD, False, False, False, None),
    "elsewhere/absent/recorded-nowhere/restart": (S.RESTART, OTHER, NOWHERE, False, False, False, None),
    "elsewhere/absent/recorded-nowhere/stop": (S.STOP, OTHER, NOWHERE, False, False, False, None),
    "elsewhere/absent/recorded-nowhere/shutdown": (S.SHUTDOWN, OTHER, NOWHERE, False, False, False, None),
    "elsewhere/absent/guest-stopped": (S.START, OTHER, NOWHERE, False, False, True, None),
    # --- assigned elsewhere, runs here: send it along or stop it ---------------------------------
    "elsewhere/here/start": (S.START, OTHER, ME, True, False, False, Act.MIGRATE),
    "elsewhere/here/start/recorded-nowhere": (S.START, OTHER, NOWHERE, True, False, False, Act.MIGRATE),
    "elsewhere/here/restart": (S.RESTART, OTHER, ME, True, False, False, Act.MIGRATE),
    "elsewhere/here/migrate": (S.MIGRATE, OTHER, ME, True, False, False, Act.MIGRATE),
    "elsewhere/here/migrate-live": (S.MIGRATE_LIVE, OTHER, ME, True, False, False, Act.MIGRATE),
    "elsewhere/here/migrate/target-dead": (S.MIGRATE, DEAD, ME, True, False, False, Act.MIGRATE),
    "elsewhere/here/stop": (S.STOP, OTHER, ME, True, False, False, Act.POWER_OFF),
    "elsewhere/here/shutdown": (S.SHUTDOWN, OTHER, ME, True, False, False, Act.SHUTDOWN),
    "elsewhere/here/shutdown/hard-ignored": (S.SHUTDOWN, OTHER, ME, True, True, False, Act.SHUTDOWN),
    "elsewhere/here/disable": (S.DISABLE, OTHER, ME, True, False, False, Act.SHUTDOWN),
    "elsewhere/here/disable/hard": (S.DISABLE, OTHER, ME, True, True, False, Act.POWER_OFF),
    "elsewhere/here/fail": (S.FAIL, OTHER, ME, True, False, False, None),
    "elsewhere/here/fail/hard": (S.FAIL, OTHER, ME, True, True, False, None),
    "elsewhere/here/provision": (S.PROVISION, OTHER, ME, True, False, False, None),
    "elsewhere/here/mirror": (S.MIRROR, OTHER, ME, True, False, False, None),
    "elsewhere/here/import": (S.IMPORT, OTHER, ME, True, False, False, None),
    # --- assigned here, start / migrate, runs here ------------------------------------------------
    "here/here/start/recorded-here": (S.START, ME, ME, True, False, False, None),
    "here/here/start/recorded-nowhere": (S.START, ME, NOWHERE, True, False, False, Act.ADOPT),
    "here/here/start/recorded-other": (S.START, ME, OTHER, True, False, False, Act.ADOPT),
    "here/here/start/recorded-dead": (S.START, ME, DEAD, True, False, False, Act.ADOPT),
    "here/here/start/guest-stopped-flag-ignored": (S.START, ME, ME, True, False, True, None),
    "here/here/migrate/recorded-other": (S.MIGRATE, ME, OTHER, True, False, False, Act.FINISH_MIGRATION),
    "here/here/migrate/recorded-here": (S.MIGRATE, ME, ME, True, False, False, Act.FINISH_MIGRATION),
    "here/here/migrate/recorded-nowhere": (S.MIGRATE, ME, NOWHERE, True, False, False, Act.FINISH_MIGRATION),
    "here/here/migrate-live/recorded-other": (
        S.MIGRATE_LIVE,
        ME,
        OTHER,
        True,
        False,
        False,
        Act.FINISH_MIGRATION,
    ),
    "here/here/migrate-live/recorded-dead": (
        S.MIGRATE_LIVE,
        ME,
        DEAD,
        True,
        False,
        False,
        Act.FINISH_MIGRATION,
    ),
    # --- assigned here, start / migrate, not running here -----------------------------------------
    "here/absent/start/recorded-nowhere": (S.START, ME, NOWHERE, False, False, False, Act.START),
    "here/absent/start/recorded-dead": (S.START, ME, DEAD, False, False, False, Act.START),
    "here/absent/start/recorded-other-alive": (S.START, ME, OTHER, False, False, False, None),
    "here/absent/start/recorded-here/crashed": (S.START, ME, ME, False, False, False, Act.RECOVER),
    "here/absent/start/recorded-here/guest-stopped": (S.START, ME, ME, False, False, True, Act.GUEST_STOPPED),
    "here/absent/start/recorded-nowhere/guest-stopped": (S.START, ME, NOWHERE, False, False, True, Act.START),
    "here/absent/start/recorded-other/guest-stopped": (S.START, ME, OTHER, False, False, True, None),
    "here/absent/migrate/recorded-nowhere": (S.MIGRATE, ME, NOWHERE, False, False, False, Act.START),
    "here/absent/migrate/recorded-dead": (S.MIGRATE, ME, DEAD, False, False, False, Act.START),
    "here/absent/migrate/recorded-other-alive": (S.MIGRATE, ME, OTHER, False, False, False, None),
    "here/absent/migrate/recorded-here": (S.MIGRATE, ME, ME, False, False, False, Act.START),
    "here/absent/migrate/recorded-here/guest-stopped": (S.MIGRATE, ME, ME, False, False, True, Act.START),
    "here/absent/migrate-live/recorded-nowhere": (
        S.MIGRATE_LIVE,
        ME,
        NOWHERE,
        False,
        False,
        False,
        Act.START,
    ),
    "here/absent/migrate-live/recorded-dead": (S.MIGRATE_LIVE, ME, DEAD, False, False, False, Act.START),
    "here/absent/migrate-live/recorded-other-alive": (S.MIGRATE_LIVE, ME, OTHER, False, False, False, None),
    # --- assigned here, restart -------------------------------------------------------------------
    "here/here/restart/recorded-here": (S.RESTART, ME, ME, True, False, False, Act.RESTART),
    "here/here/restart/recorded-nowhere": (S.RESTART, ME, NOWHERE, True, False, False, Act.RESTART),
    "here/here/restart/recorded-other": (S.RESTART, ME, OTHER, True, False, False, Act.RESTART),
    "here/absent/restart/recorded-nowhere": (S.RESTART, ME, NOWHERE, False, False, False, Act.START),
    "here/absent/restart/recorded-here": (S.RESTART, ME, ME, False, False, False, Act.START),
    "here/absent/restart/recorded-dead": (S.RESTART, ME, DEAD, False, False, False, Act.START),
    "here/absent/restart/recorded-other-alive": (S.RESTART, ME, OTHER, False, False, False, None),
    # --- assigned here, not-running states, runs here: stop it (or leave it alone) -----------------
    "here/here/stop": (S.STOP, ME, ME, True, False, False, Act.POWER_OFF),
    "here/here/stop/recorded-nowhere": (S.STOP, ME, NOWHERE, True, False, False, Act.POWER_OFF),
    "here/here/shutdown": (S.SHUTDOWN, ME, ME, True, False, False, Act.SHUTDOWN),
    "here/here/shutdown/hard-ignored": (S.SHUTDOWN, ME, ME, True, True, False, Act.SHUTDOWN),
    "here/here/disable": (S.DISABLE, ME, ME, True, False, False, Act.SHUTDOWN),
    "here/here/disable/hard": (S.DISABLE, ME, ME, True, True, False, Act.POWER_OFF),
    "here/here/fail": (S.FAIL, ME, ME, True, False, False, None),
    "here/here/fail/hard": (S.FAIL, ME, ME, True, True, False, None),
    "here/here/provision": (S.PROVISION, ME, ME, True, False, False, None),
    "here/here/mirror": (S.MIRROR, ME, ME, True, False, False, None),
    "here/here/import": (S.IMPORT, ME, ME, True, False, False, None),
    # --- assigned here, not-running states, not running here: fix the record -----------------------
    "here/absent/shutdown/recorded-nowhere": (S.SHUTDOWN, ME, NOWHERE, False, False, False, Act.MARK_STOPPED),
    "here/absent/shutdown/recorded-here": (S.SHUTDOWN, ME, ME, False, False, False, Act.MARK_STOPPED),
    "here/absent/shutdown/recorded-dead": (S.SHUTDOWN, ME, DEAD, False, False, False, Act.MARK_STOPPED),
    "here/absent/shutdown/recorded-other-alive": (S.SHUTDOWN, ME, OTHER, False, False, False, None),
    "here/absent/stop/recorded-here": (S.STOP, ME, ME, False, False, False, Act.FORGET),
    "here/absent/disable/recorded-here": (S.DISABLE, ME, ME, False, False, False, Act.FORGET),
    "here/absent/disable/hard/recorded-here": (S.DISABLE, ME, ME, False, True, False, Act.FORGET),
    "here/absent/fail/recorded-here": (S.FAIL, ME, ME, False, False, False, Act.FORGET),
    "here/absent/provision/recorded-here": (S.PROVISION, ME, ME, False, False, False, Act.FORGET),
    "here/absent/mirror/recorded-here": (S.MIRROR, ME, ME, False, False, False, Act.FORGET),
    "here/absent/import/recorded-here": (S.IMPORT, ME, ME, False, False, False, Act.FORGET),
    "here/absent/stop/recorded-here/guest-stopped": (S.STOP, ME, ME, False, False, True, Act.FORGET),
    "here/absent/stop/recorded-nowhere": (S.STOP, ME, NOWHERE, False, False, False, None),
    "here/absent/stop/recorded-other": (S.STOP, ME, OTHER, False, False, False, None),
    "here/absent/stop/recorded-dead": (S.STOP, ME, DEAD, False, False, False, None),
    "here/absent/disable/recorded-nowhere": (S.DISABLE, ME, NOWHERE, False, False, False, None),
    "here/absent/fail/recorded-nowhere": (S.FAIL, ME, NOWHERE, False, False, False, None),
    "here/absent/fail/recorded-dead": (S.FAIL, ME, DEAD, False, False, False, None),
    "here/absent/provision/recorded-nowhere": (S.PROVISION, ME, NOWHERE, False, False, False, None),
    "here/absent/mirror/recorded-nowhere": (S.MIRROR, ME, NOWHERE, False, False, False, None),
    "here/absent/import/recorded-nowhere": (S.IMPORT, ME, NOWHERE, False, False, False, None),
    "here/absent/mirror/recorded-other": (S.MIRROR, ME, OTHER, False, False, False, None),
    "here/absent/import/recorded-other": (S.IMPORT, ME, OTHER, False, False, False, None),
}


@pytest.mark.parametrize(
    ("state", "node", "running_on", "here", "hard", "guest_stopped", "expected"),
    list(CASES.values()),
    ids=list(CASES),
)
def test_decide_table(state, node, running_on, here, hard, guest_stopped, expected):
    assert (
        act(state, node=node, running_on=running_on, here=here, hard=hard, guest_stopped=guest_stopped)
        == expected
    )


def test_table_covers_every_state_and_act():
    covered = {(case[0], case[1] == ME, case[3]) for case in CASES.values()}
    for state in VMState:
        for assigned_here, here in ((True, True), (True, False), (False, True)):
            assert (state, assigned_here, here) in covered, (state, assigned_here, here)
    assert {case[6] for case in CASES.values()} == set(Act) | {None}


def test_reasons_name_the_target_and_the_state():
    moving = decide(vm(S.START, OTHER, ME), ME, here=True, alive=set(ALIVE))
    assert moving == Decision(Act.MIGRATE, f"it belongs to node {OTHER}")
    stopping = decide(vm(S.DISABLE, ME, ME, hard=True), ME, here=True, alive=set(ALIVE))
    assert stopping == Decision(Act.POWER_OFF, "its state is disable")
    assert decide(vm(S.SHUTDOWN, ME, ME), ME, here=True, alive=set(ALIVE)) == Decision(
        Act.SHUTDOWN, "its state is shutdown"
    )
    assert decide(vm(S.START, ME, ME), ME, here=False, alive=set(ALIVE)) == Decision(
        Act.RECOVER, "its QEMU process is gone"
    )


# --- exhaustive safety rules ------------------------------------------------------------------

NODES = (ME, OTHER, DEAD, NOWHERE)
GRID = list(itertools.product(VMState, NODES, NODES, (True, False), (True, False), (True, False)))
STARTS = {Act.START, Act.RECOVER, Act.RESTART}
NEEDS_LIBVIRT_HERE = {Act.MIGRATE, Act.RESTART, Act.SHUTDOWN, Act.POWER_OFF, Act.ADOPT, Act.FINISH_MIGRATION}


def grid(**fixed):
    for state, node, running_on, here, hard, guest_stopped in GRID:
        combo = {
            "state": state,
            "node": node,
            "running_on": running_on,
            "here": here,
            "hard": hard,
            "guest_stopped": guest_stopped,
        }
        if all(combo[key] == value for key, value in fixed.items()):
            yield combo, act(**combo)


def test_grid_is_complete():
    assert len(GRID) == len(VMState) * 4 * 4 * 8 == 1408


def test_never_start_a_vm_another_live_node_still_runs():
    for combo, result in grid(running_on=OTHER, here=False):
        assert result not in STARTS, combo
        # nor record it as stopped while that node still runs it
        assert result != Act.MARK_STOPPED, combo


def test_shutdown_requested_while_another_live_node_runs_it_is_left_to_that_node():
    # The old node still runs it (e.g. a migration by shutdown in progress); it does the
    # shutdown and records the stop. Marking it stopped here would make the old node see
    # "stop" and power it off hard instead of a clean ACPI shutdown.
    assert act(S.SHUTDOWN, node=ME, running_on=OTHER, here=False) is None
    # And that other node, for which the VM belongs elsewhere, shuts it down gracefully.
    other_view = decide(vm(S.SHUTDOWN, node=ME, running_on=OTHER), OTHER, here=True, alive=set(ALIVE))
    assert other_view is not None and other_view.act == Act.SHUTDOWN


def test_a_dead_node_does_not_block_a_start():
    assert act(S.START, node=ME, running_on=DEAD, here=False) == Act.START
    # The same VM, with the dead node counted alive, waits.
    decision = decide(vm(S.START, ME, DEAD), ME, here=False, alive=set(ALIVE) | {DEAD})
    assert decision is None


@pytest.mark.parametrize("state", [S.PROVISION, S.MIRROR, S.IMPORT])
def test_never_start_provision_or_mirror_vms(state):
    for combo, result in grid(state=state):
        # at most the stale "runs here" record is cleared; libvirt is never touched
        assert result in (None, Act.FORGET), combo


def test_never_stop_or_move_a_failed_vm_that_runs():
    for combo, result in grid(state=S.FAIL, here=True):
        assert result is None, combo
    for combo, result in grid(state=S.FAIL):
        assert result in (None, Act.FORGET), combo


def test_only_the_assigned_node_starts_a_vm():
    for node in (OTHER, DEAD, NOWHERE):
        for combo, result in grid(node=node):
            assert result not in STARTS | {Act.ADOPT, Act.FINISH_MIGRATION, Act.MARK_STOPPED}, combo


def test_never_start_a_vm_libvirt_already_runs_here():
    for combo, result in grid(here=True):
        assert result not in {Act.START, Act.RECOVER, Act.GUEST_STOPPED, Act.MARK_STOPPED, Act.FORGET}, combo


def test_never_act_through_libvirt_on_a_vm_that_does_not_run_here():
    for combo, result in grid(here=False):
        assert result not in NEEDS_LIBVIRT_HERE, combo


def test_vms_that_should_not_run_are_never_started():
    for state in NOT_RUNNING_STATES:
        for combo, result in grid(state=state):
            assert result not in STARTS | {Act.ADOPT, Act.FINISH_MIGRATION, Act.MIGRATE}, combo


def test_a_graceful_shutdown_never_becomes_a_power_off():
    for combo, result in grid(state=S.SHUTDOWN):
        assert result != Act.POWER_OFF, combo


def test_disable_powers_off_only_when_hard():
    for combo, result in grid(state=S.DISABLE, hard=False):
        assert result != Act.POWER_OFF, combo
    hard = [result for _, result in grid(state=S.DISABLE, hard=True, here=True) if result is not None]
    assert set(hard) == {Act.POWER_OFF}


def test_running_vms_are_never_stopped():
    for state in RUNNING_STATES:
        for combo, result in grid(state=state):
            assert result not in {Act.SHUTDOWN, Act.POWER_OFF, Act.MARK_STOPPED}, combo


def test_guest_stopped_and_recover_only_for_start_recorded_here():
    for combo, result in grid():
        if result == Act.GUEST_STOPPED:
            assert combo["guest_stopped"] and combo["state"] == S.START, combo
        if result in (Act.GUEST_STOPPED, Act.RECOVER):
            assert (combo["node"], combo["running_on"], combo["here"]) == (ME, ME, False), combo
    # a guest that powered itself off is never restarted as a crash
    assert act(S.START, running_on=ME, here=False, guest_stopped=True) != Act.RECOVER


def test_forget_only_when_recorded_here_and_absent():
    for combo, result in grid():
        if result == Act.FORGET:
            assert combo["running_on"] == ME and not combo["here"], combo


def test_hands_off_states_never_touch_libvirt():
    for state in HANDS_OFF_STATES:
        for combo, result in grid(state=state):
            assert result not in NEEDS_LIBVIRT_HERE | STARTS, combo


def test_decide_is_pure():
    record = vm(S.START, ME, ME)
    alive = {ME, OTHER}
    first = decide(record, ME, here=False, alive=alive)
    assert (
        decide(record, ME, here=False, alive=alive)
        == first
        == Decision(Act.RECOVER, "its QEMU process is gone")
    )
    assert record == vm(S.START, ME, ME)
    assert alive == {ME, OTHER}


def test_me_not_in_alive_does_not_matter_for_own_vms():
    record = vm(S.START, ME, NOWHERE)
    assert decide(record, ME, here=False, alive=set()) == Decision(Act.START, "it should run here")
    crashed = replace(record, placement=replace(record.placement, running_on=ME))
    assert decide(crashed, ME, here=False, alive=set()) == Decision(Act.RECOVER, "its QEMU process is gone")
    # a record that names a node not in `alive` does not block the start
    assert decide(vm(S.START, ME, OTHER), ME, here=False, alive=set()) == Decision(
        Act.START, "it should run here"
    )
