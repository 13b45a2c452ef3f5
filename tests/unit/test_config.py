import os
import subprocess
import sys

import pytest
import yaml

from pvc.config import load_config, parse_config
from pvc.errors import ConfigError
from tests.helpers import node_config_data


def valid() -> dict:
    return node_config_data(
        "n1", ["n1", "n2", "n3"], "10.0.0.1:2181", keepalive_interval=5, fence_intervals=6, session_timeout=10
    )


def test_valid_config_loads_with_defaults():
    data = valid()
    del data["timers"]
    del data["zookeeper"]["session_timeout"]
    config = parse_config(data)
    assert config.timers.keepalive_interval == 1
    assert config.timers.fence_intervals == 5
    assert config.timers.suicide_intervals == 3
    assert config.zookeeper.session_timeout == 4
    assert config.fence_after == 6
    assert config.fencing.actions.successful_fence == "migrate"
    assert config.fencing.actions.failed_fence == "none"
    assert not config.fencing.ipmi.complete
    assert config.is_coordinator
    assert config.api.listen.port == 7370
    assert config.zookeeper.connect_string == "10.0.0.1:2181"
    assert config.networks.bridge_device is None
    assert config.networks.bgp.enabled
    assert (config.networks.bgp.keepalive, config.networks.bgp.hold) == (3, 9)
    assert config.networks.bgp.upstream is None


def test_port_defaults_and_chroot():
    data = valid()
    data["zookeeper"] = {"hosts": ["a", "b:2182"], "chroot": "/pvc", "session_timeout": 10}
    assert parse_config(data).zookeeper.connect_string == "a:2181,b:2182/pvc"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["node"].pop("name"), "node.name: required key is missing"),
        (lambda d: d.pop("zookeeper"), "zookeeper: required key is missing"),
        (lambda d: d["timers"].update(keepalive_interval="soon"), "timers.keepalive_interval:"),
        (lambda d: d["timers"].update(keepalive_interval=0), "timers.keepalive_interval:"),
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (lambda d: d["networks"]["cluster"].update(address="10.1.2.300/24"), "networks.cluster.address:"),
        (lambda d: d["api"].update(listen={"port": 99999}), "api.listen.port:"),
        (lambda d: d["api"].pop("token"), "api.token: authentication is enabled (the default)"),
        (lambda d: d["api"].update(token=[{"token": "short"}]), "api.token.0.token: an API key must be"),
        (lambda d: d["api"].update(user="root"), "api.user: running the API as root needs api.allow_root"),
        (lambda d: d["api"].update(ssl={"enabled": True}), "api.ssl: certificate and private_key"),
        (lambda d: d["timers"].update(fence_intervals=1), "timers.fence_intervals:"),
        (
            lambda d: d["networks"]["upstream"].update(floating_address="10.9.9.9/24"),
            "networks.upstream: floating_address",
        ),
        (lambda d: d["networks"].update(bridge_device="eth0; reboot"), "networks.bridge_device:"),
        (lambda d: d["networks"].update(bridge_device="a" * 16), "networks.bridge_device:"),
        (lambda d: d["networks"].update(bridge_mtu=100), "networks.bridge_mtu:"),
        (lambda d: d["networks"].update(bgp={"keepalive": 10, "hold": 20}), "networks.bgp: hold (20 s)"),
        (lambda d: d["networks"].update(bgp={"asn": 0}), "networks.bgp.asn:"),
        (lambda d: d["networks"].update(sriov=[{"phy": "ens1f0"}]), "networks.sriov.0.vfcount:"),
        (
            lambda d: d["networks"].update(sriov=[{"phy": "ens1f0", "vfcount": -1}]),
            "networks.sriov.0.vfcount:",
        ),
        (lambda d: d["networks"].update(sriov=[{"phy": "ens 1", "vfcount": 2}]), "networks.sriov.0.phy:"),
        (lambda d: d["networks"].update(sriov=[{"phy": "../x", "vfcount": 2}]), "networks.sriov.0.phy:"),
        (
            lambda d: d["networks"].update(sriov=[{"phy": "ens1f0", "vfcount": 2, "mtu": 100}]),
            "networks.sriov.0.mtu:",
        ),
        (
            lambda d: d["networks"].update(sriov=[{"phy": "ens1f0", "vfcount": 2, "numvfs": 3}]),
            "networks.sriov.0.numvfs: unknown key",
        ),
        (
            lambda d: d["networks"].update(
                sriov=[{"phy": "ens1f0", "vfcount": 2}, {"phy": "ens1f0", "vfcount": 1}]
            ),
            "networks: sriov names PF ens1f0 more than once",
        ),
        (
            lambda d: d["networks"].update(bgp={"upstream": {"peers": ["router"], "asn": 65001}}),
            "networks.bgp.upstream.peers.0:",
        ),
    ],
)
def test_bad_key_gives_one_line_naming_it(mutate, expected):
    data = valid()
    data.setdefault("api", {})
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message


def test_sriov_devices_are_read_with_their_counts():
    data = valid()
    assert parse_config(data).networks.sriov == []  # none: the node leaves SR-IOV alone
    data["networks"]["sriov"] = [
        {"phy": "ens1f0", "vfcount": 8, "mtu": 9000},
        {"phy": "ens1f1", "vfcount": 0},
    ]
    found = parse_config(data).networks.sriov
    assert [(d.phy, d.vfcount, d.mtu) for d in found] == [("ens1f0", 8, 9000), ("ens1f1", 0, None)]


def test_timing_invariant_names_the_key():
    data = valid()
    data["zookeeper"]["session_timeout"] = 40
    with pytest.raises(
        ConfigError, match=r"timers.fence_intervals: .* must exceed zookeeper.session_timeout"
    ):
        parse_config(data)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.conf")
    bad = tmp_path / "bad.conf"
    bad.write_text("node: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    scalar = tmp_path / "scalar.conf"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must contain a YAML mapping"):
        load_config(scalar)


def _pythonpath() -> dict[str, str]:
    """The test run's PYTHONPATH (a worktree's sources), if it has one."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def test_pvcnoded_exits_2_with_one_line(tmp_path):
    data = valid()
    data["timers"]["fence_intervals"] = "many"
    path = tmp_path / "pvc.conf"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "pvc.node.daemon"],
        env={"PVC_CONFIG_FILE": str(path), "PATH": "/usr/bin:/bin", **_pythonpath()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "timers.fence_intervals" in lines[0]
    assert "Traceback" not in result.stderr


def test_session_timeout_must_cover_two_keepalives():
    data = valid()
    data["zookeeper"]["session_timeout"] = 8
    with pytest.raises(ConfigError, match=r"zookeeper.session_timeout: must be at least twice"):
        parse_config(data)


def test_peers_reach_libvirt_over_tls_by_default():
    data = valid()
    data.pop("hypervisor", None)
    config = parse_config(data)
    address = config.networks.cluster.address.ip
    assert config.peer_uri == f"qemu+tls://{address}/system"
    assert config.migration_uri == f"tcp://{address}"
    assert config.hypervisor.migration_tls is True
    data["hypervisor"] = {"peer_uri": "qemu+tls://hv1.example/system", "migration_tls": False}
    config = parse_config(data)
    assert config.peer_uri == "qemu+tls://hv1.example/system" and not config.hypervisor.migration_tls


def test_api_authentication_is_on_by_default():
    data = valid()
    data.pop("api")
    with pytest.raises(ConfigError, match=r"api\.token: authentication is enabled"):
        parse_config(data)  # on by default, so a key is required
    data["api"] = {"token": [{"token": "k" * 32}]}
    api = parse_config(data).api
    assert api.authentication.enabled is True
    assert (api.user, api.allow_root) == ("pvcapi", False)
    data["api"] = {"authentication": {"enabled": False}}
    assert parse_config(data).api.authentication.enabled is False  # only when said explicitly


def test_api_keys_shorter_than_32_characters_are_refused():
    data = valid()
    data["api"] = {"token": [{"token": "k" * 31}]}
    with pytest.raises(ConfigError, match=r"api\.token\.0\.token: an API key must be at least 32"):
        parse_config(data)


def test_api_binds_the_upstream_floating_address_by_default():
    data = valid()
    config = parse_config(data)
    assert config.api.listen.address is None
    assert config.api_listen_address == "10.100.0.250"
    del data["networks"]["upstream"]["floating_address"]
    assert parse_config(data).api_listen_address == "10.100.0.1"
    data["api"]["listen"] = {"address": "0.0.0.0"}
    assert parse_config(data).api_listen_address == "0.0.0.0"  # only when configured
