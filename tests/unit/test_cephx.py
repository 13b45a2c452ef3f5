"""cephx keys and keyrings, the roles' capabilities and their configuration."""

from __future__ import annotations

import base64
import grp
import os
import stat
import struct
from pathlib import Path

import pytest

from pvc.config import StorageSection, parse_config
from pvc.errors import ConfigError
from pvc.hypervisor.secrets import ceph_secret_xml
from pvc.node.ceph_secret import define_vm_secret
from pvc.storage import cephx
from pvc.storage.errors import StorageError
from tests.unit.test_config import valid

SECRET = "5c2f0b57-8f3e-4f43-9a43-0c6b1e1d7a01"


def test_a_new_key_is_an_aes_key_of_16_random_bytes():
    key = cephx.new_key(now=1_700_000_000.5)
    raw = base64.b64decode(key)
    assert struct.unpack("<HIIH", raw[:12]) == (1, 1_700_000_000, 500_000_000, 16)
    assert len(raw) == 28 and cephx.check_key(key) == key
    assert cephx.new_key() != cephx.new_key()


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"short").decode(), "AQ" + "A" * 38])
def test_malformed_keys_are_refused(bad):
    with pytest.raises(ValueError):
        cephx.check_key(bad)


def test_keyring_round_trip_and_private_mode(tmp_path):
    node, api = cephx.new_key(), cephx.new_key()
    path = cephx.write_keyring(
        tmp_path / "k" / "ceph.keyring",
        [cephx.Entry("client.pvc-node", node, {"mon": "profile rbd"}), cephx.Entry("client.pvc-api", api)],
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert '\tcaps mon = "profile rbd"' in text
    assert cephx.read_key(path, "client.pvc-node") == node
    assert cephx.read_key(path, "client.pvc-api") == api
    with pytest.raises(StorageError, match=r"no key for client\.admin"):
        cephx.read_key(path, "client.admin")
    with pytest.raises(StorageError, match="cannot read keyring"):
        cephx.read_key(tmp_path / "missing", "client.admin")


def test_a_keyring_for_a_group_is_0640_only_when_the_group_exists(tmp_path):
    entry = [cephx.Entry("client.pvc-api", cephx.new_key())]
    shared = cephx.write_keyring(tmp_path / "api.keyring", entry, group=grp.getgrgid(os.getgid()).gr_name)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640 and shared.stat().st_gid == os.getgid()
    alone = cephx.write_keyring(tmp_path / "alone.keyring", entry, group="pvc-no-such-group")
    assert stat.S_IMODE(alone.stat().st_mode) == 0o600


def test_caps_may_not_carry_double_quotes(tmp_path):
    with pytest.raises(ValueError, match="double quote"):
        cephx.keyring_text([cephx.Entry("client.x", cephx.new_key(), {"mon": 'allow command "x"'})])


def test_the_api_and_vm_roles_cannot_administer_the_monitors():
    for role in ("api", "vm"):
        caps = cephx.ROLE_CAPS[role]
        for forbidden in ("allow *", "allow rw", "config", "auth", "mon ", "config-key"):
            assert forbidden not in caps.mon.replace("profile rbd", ""), (role, forbidden)
        assert caps.osd == "profile rbd"
    assert cephx.ROLE_CAPS["api"].auth_args()[:2] == ["mon", cephx.ROLE_CAPS["api"].mon]


def test_storage_settings_per_role():
    storage = StorageSection(
        ceph_conf="/etc/ceph/ceph.conf",
        ceph_user="client.pvc-node",
        ceph_keyring="/etc/ceph/node.keyring",
        api_user="client.pvc-api",
        api_keyring="/etc/ceph/api.keyring",
    )
    api = storage.for_api()
    assert (api.ceph_user, str(api.ceph_keyring)) == ("client.pvc-api", "/etc/ceph/api.keyring")
    assert StorageSection(ceph_user="client.pvc-node").for_api().ceph_user == "client.pvc-node"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"vm_user": "client.pvc-vm"}, "vm_user needs vm_keyring and vm_secret_uuid"),
        ({"vm_user": "client.pvc-vm", "vm_keyring": "/k", "vm_secret_uuid": "nope"}, "vm_secret_uuid"),
        ({"api_keyring": "/k"}, "api_keyring needs api_user"),
        ({"ceph_user": "admin"}, "storage.ceph_user"),
    ],
)
def test_bad_storage_keys_are_config_errors(storage, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**valid(), "storage": storage})


def test_the_vm_secret_is_private_and_persistent():
    xml = ceph_secret_xml(SECRET, "client.pvc-vm")
    assert "ephemeral='no' private='yes'" in xml and "<usage type='ceph'>" in xml
    assert f"<uuid>{SECRET}</uuid>" in xml


def test_the_storage_docs_show_the_roles_caps_as_the_code_has_them():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "storage.md").read_text()
    for role in cephx.ROLES:
        assert cephx.auth_command(role) in docs, f"docs/storage.md: the {role} user's command is stale"


def test_the_node_reports_a_vm_secret_it_cannot_set(tmp_path, caplog):
    missing = StorageSection(vm_user="client.pvc-vm", vm_keyring=tmp_path / "nope", vm_secret_uuid=SECRET)
    assert define_vm_secret(None, missing) is False  # the key is read before libvirt is asked
    assert "cannot set the VM disks' ceph secret" in caplog.text and "nope" in caplog.text
    assert define_vm_secret(None, StorageSection()) is True  # no vm_user: nothing to do
