"""Fencing settings and the timing invariants that keep a VM from running on two nodes."""

import pytest

from pvc.config import parse_config
from pvc.config.fencing import SELF_FENCE_STOP_ALLOWANCE
from pvc.errors import ConfigError
from tests.helpers import node_config_data


def config_data(**timers: float) -> dict:
    data = node_config_data("n1", ["n1"], "10.0.0.1:2181", keepalive_interval=1, session_timeout=4)
    data["timers"] = {"keepalive_interval": 1, "fence_intervals": 5, **timers}
    return data


def test_defaults_stop_a_cut_off_node_before_a_peer_may_fence_it():
    config = parse_config(config_data(suicide_intervals=3))
    assert config.timers.suicide_after + SELF_FENCE_STOP_ALLOWANCE < config.fence_after


@pytest.mark.parametrize(
    ("timers", "fencing"),
    [
        ({"suicide_intervals": 4}, {}),  # 4 + 2 >= 5 + 1
        ({"suicide_intervals": 6}, {"saving_throws": 3}),  # 6 + 2 >= 5 + 3
        ({"suicide_intervals": 5}, {"saving_throws": 2}),  # 5 + 2 >= 5 + 2
        ({"suicide_intervals": 4}, {"saving_throws": 0}),  # 4 + 2 >= 5
    ],
)
def test_self_fence_that_could_come_too_late_is_refused(timers, fencing):
    data = config_data(**timers)
    data["fencing"] = fencing
    with pytest.raises(ConfigError, match=r"timers.suicide_intervals: a node cut off from ZooKeeper"):
        parse_config(data)


def test_a_longer_dead_window_makes_room_for_a_later_self_fence():
    data = config_data(suicide_intervals=6, fence_intervals=8)
    assert parse_config(data).timers.suicide_after == 6


def test_one_interval_of_self_fence_is_too_jumpy():
    with pytest.raises(ConfigError, match=r"timers.suicide_intervals: must be 0 \(off\) or at least 2"):
        parse_config(config_data(suicide_intervals=1))


def test_failed_fence_migrate_needs_self_fencing():
    data = config_data(suicide_intervals=0)
    data["fencing"] = {"actions": {"failed_fence": "migrate"}}
    expected = r"fencing.actions.failed_fence: migrate needs timers.suicide_intervals"
    with pytest.raises(ConfigError, match=expected):
        parse_config(data)
    data["timers"]["suicide_intervals"] = 3
    assert parse_config(data).fencing.actions.failed_fence == "migrate"


@pytest.mark.parametrize(
    ("fencing", "key"),
    [
        ({"actions": {"successful_fence": "reboot"}}, "fencing.actions.successful_fence"),
        ({"ipmi": {"host": "bmc; reboot"}}, "fencing.ipmi.host"),
        ({"ipmi": {"port": 0}}, "fencing.ipmi.port"),
        ({"ipmi": {"pass": "x"}}, "fencing.ipmi.pass"),
        ({"saving_throws": -1}, "fencing.saving_throws"),
        ({"ipmi_timeout": 0}, "fencing.ipmi_timeout"),
    ],
)
def test_bad_fencing_keys_are_named(fencing, key):
    data = config_data()
    data["fencing"] = fencing
    with pytest.raises(ConfigError, match=key):
        parse_config(data)


def test_ipmi_password_is_never_in_the_config_repr():
    data = config_data()
    data["fencing"] = {"ipmi": {"host": "10.0.0.101", "user": "admin", "password": "s3cret-pw"}}
    config = parse_config(data)
    assert config.fencing.ipmi.complete
    assert "s3cret-pw" not in repr(config)
