import pytest

from pvc.node.phases import Phase, PhaseError, PrimaryPhases


def recording(calls: list[str], name: str, fail_takeover: bool = False, fail_relinquish: bool = False):
    def takeover():
        calls.append(f"up:{name}")
        if fail_takeover:
            raise RuntimeError("boom")

    def relinquish():
        calls.append(f"down:{name}")
        if fail_relinquish:
            raise RuntimeError("bang")

    return Phase(name, takeover, relinquish)


def test_takeover_in_order_relinquish_in_reverse():
    calls: list[str] = []
    phases = PrimaryPhases([recording(calls, n) for n in ("ip", "api", "dhcp")])
    phases.take_over()
    assert phases.relinquish() == []
    assert calls == ["up:ip", "up:api", "up:dhcp", "down:dhcp", "down:api", "down:ip"]


def test_failed_takeover_rolls_back_completed_phases():
    calls: list[str] = []
    phases = PrimaryPhases([recording(calls, "ip"), recording(calls, "api", fail_takeover=True)])
    with pytest.raises(PhaseError, match="api"):
        phases.take_over()
    assert calls == ["up:ip", "up:api", "down:ip"]


def test_relinquish_continues_past_a_failure():
    calls: list[str] = []
    phases = PrimaryPhases([recording(calls, "ip"), recording(calls, "api", fail_relinquish=True)])
    assert phases.relinquish() == ["api"]
    assert calls == ["down:api", "down:ip"]


def test_a_phase_can_be_put_before_another() -> None:
    phases = PrimaryPhases([Phase("addresses"), Phase("api")])
    phases.add(Phase("networks"), before="api")
    phases.add(Phase("last"), before="no-such-phase")
    assert phases.names == ["addresses", "networks", "api", "last"]


def test_dropping_the_role_at_once_abandons_where_a_phase_can(caplog) -> None:
    calls: list[str] = []
    api = Phase(
        "api", relinquish=lambda: calls.append("graceful:api"), abandon=lambda: calls.append("kill:api")
    )
    phases = PrimaryPhases([recording(calls, "ip"), api])
    caplog.set_level("INFO", logger="pvc.node.phases")
    assert phases.relinquish(at_once=True) == []
    assert calls == ["kill:api", "down:ip"]  # a phase without an abandon hook relinquishes
    assert "relinquished at once: api 0.00 s, ip 0.00 s" in caplog.text
    calls.clear()
    assert phases.relinquish() == []
    assert calls == ["graceful:api", "down:ip"]
