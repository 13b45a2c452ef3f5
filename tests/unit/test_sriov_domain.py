"""SR-IOV's pure domain rules: which VFs a domain's XML uses, and which VF settings are in range."""

from __future__ import annotations

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.sriov.actions import check_config
from pvc.cluster.sriov.usage import HOSTDEV, MACVTAP, VfReference, vf_references
from pvc.state.sriov import VfConfig
from tests.sriov_data import hostdev_xml, macvtap_xml

UUID = "6f1b2c3d-0000-4000-8000-000000000001"


def test_a_macvtap_interface_names_the_vfs_device() -> None:
    assert vf_references(macvtap_xml("a", UUID, "ens1f0v3")) == (VfReference(MACVTAP, "ens1f0v3"),)


def test_a_hostdev_interface_names_the_vfs_pci_address() -> None:
    assert vf_references(hostdev_xml("a", UUID, "0000:01:10.1")) == (VfReference(HOSTDEV, "0000:01:10.1"),)


def test_pci_hostdev_devices_count_and_bridges_do_not() -> None:
    xml = macvtap_xml("a", UUID, "ens1f0v0").replace(
        "</devices>",
        "<interface type='bridge'><source bridge='vmbr100'/></interface>"
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0' bus='2' slot='16' function='7'/></source></hostdev>"
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/></source></hostdev>"
        "<interface type='direct'><source mode='bridge'/></interface>"
        "<interface type='hostdev'><source><address type='pci' bus='0x01'/></source></interface>"
        "</devices>",
    )
    # decimal or hexadecimal attributes; an incomplete address or a source without a device is no VF
    assert vf_references(xml) == (
        VfReference(MACVTAP, "ens1f0v0"),
        VfReference(HOSTDEV, "0000:02:10.7", interface=False),  # a PCI device: perhaps no VF
    )


def test_xml_that_does_not_parse_uses_nothing() -> None:
    assert vf_references("<domain><devices>") == ()
    assert vf_references("<network/>") == ()


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (VfConfig(vlan_id=4095), "vlan_id must be 0 to 4094, not 4095"),
        (VfConfig(vlan_id=-1), "vlan_id must be 0 to 4094, not -1"),
        (VfConfig(vlan_qos=8), "vlan_qos must be 0 to 7, not 8"),
        (VfConfig(tx_rate_max=-1), "tx_rate_max must not be negative, not -1"),
        (VfConfig(tx_rate_min=10, tx_rate_max=5), "tx_rate_min (10) must not exceed tx_rate_max (5"),
        (VfConfig(link_state="on"), "link_state must be one of auto, enable, disable, not 'on'"),
    ],
)
def test_settings_out_of_range_are_refused(config: VfConfig, words: str) -> None:
    with pytest.raises(ClusterError, match="Invalid VF configuration") as caught:
        check_config(config)
    assert words in str(caught.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ClusterError) as caught:
        check_config(VfConfig(vlan_id=5000, vlan_qos=9, link_state="x"))
    assert str(caught.value).count(";") == 2


@pytest.mark.parametrize(
    "config",
    [
        VfConfig(),
        VfConfig(vlan_id=0, vlan_qos=0),
        VfConfig(vlan_id=4094, vlan_qos=7),
        VfConfig(tx_rate_min=500, tx_rate_max=0),  # 0: no limit
        VfConfig(tx_rate_min=500, tx_rate_max=500),
        VfConfig(spoof_check=False, trust=True, query_rss=True, link_state="disable"),
    ],
)
def test_settings_in_range_pass(config: VfConfig) -> None:
    check_config(config)
