"""cephx on the session's real Ceph: no key or a wrong key is refused, and each PVC role's
key does only its part (the API's key cannot touch the monitors' configuration)."""

from __future__ import annotations

import errno
import stat

import pytest

from pvc.storage import cephx, osds, pools
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError
from tests.storage.conftest import POOL

#: Commands that change the monitors, their configuration or the keys: no PVC role may.
MONITOR_CHANGES = [
    ("config set", {"who": "global", "name": "mon_allow_pool_delete", "value": "false"}),
    ("config rm", {"who": "global", "name": "mon_allow_pool_delete"}),
    ("config-key set", {"key": "pvc-test", "val": "x"}),
    ("config-key get", {"key": "pvc-test"}),
    ("mon remove", {"name": "pvc-test-no-such-mon"}),
    ("mon set-addrs", {"name": "pvc-test-no-such-mon", "addrs": "[v2:127.0.0.9:1]"}),
    ("auth get", {"entity": "client.admin"}),
    ("auth caps", {"entity": "client.pvc-api", "caps": ["mon", "allow *"]}),
    ("auth get-or-create", {"entity": "client.pvc-test-intruder", "caps": ["mon", "allow *"]}),
    ("auth del", {"entity": "client.pvc-vm"}),
]


def _denied(call) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call()
    assert caught.value.code == errno.EACCES, caught.value
    return caught.value


def test_a_client_without_a_key_is_refused(ceph_lab, tmp_path):
    empty = tmp_path / "empty.keyring"
    empty.write_text("")
    for keyring in ("/dev/null", empty):
        _denied(lambda k=keyring: CephClient(ceph_lab.conf_path, keyring=k, timeout=5))


def test_a_client_with_a_wrong_key_is_refused(ceph_lab, tmp_path):
    for user in ("client.admin", cephx.DEFAULT_USERS["api"]):
        forged = cephx.write_keyring(tmp_path / f"{user}.keyring", [cephx.Entry(user, cephx.new_key())])
        _denied(lambda u=user, k=forged: CephClient(ceph_lab.conf_path, name=u, keyring=k, timeout=5))
    # a real key under another user's name is wrong too
    stolen = cephx.read_key(ceph_lab.keyring("vm"), ceph_lab.user("vm"))
    renamed = cephx.write_keyring(tmp_path / "renamed.keyring", [cephx.Entry("client.admin", stolen)])
    _denied(lambda: CephClient(ceph_lab.conf_path, keyring=renamed, timeout=5))


@pytest.mark.parametrize("role", cephx.ROLES)
def test_no_role_can_change_monitors_their_config_or_keys(ceph_lab, role):
    with ceph_lab.role_client(role, timeout=10) as client:
        assert client.mon_command("status")["fsid"] == ceph_lab.fsid  # the key itself works
        for command, args in MONITOR_CHANGES:
            _denied(lambda c=command, a=args: client.mon_command(c, **a))


def test_the_api_key_manages_pools_but_not_osds_or_other_pool_settings(ceph_lab, unique):
    pool = unique("authpool")
    with ceph_lab.role_client("api", timeout=20) as api:
        pools.create(api, pool, 8, "copies=1,mincopies=1")
        try:
            _denied(lambda: api.mon_command("osd pool set", pool=pool, var="nodelete", val="true"))
            _denied(lambda: api.mon_command("osd pool set", pool=pool, var="crush_rule", val="0"))
            _denied(lambda: api.mon_command("osd new", uuid="00000000-0000-4000-8000-000000000001"))
            _denied(lambda: api.mgr_command("osd purge", id=0, yes_i_really_mean_it=True))
            _denied(lambda: api.osd_command(0, "perf dump", timeout=5))
            osds.set_flag(api, "noscrub")
            osds.unset_flag(api, "noscrub")
        finally:
            pools.remove(api, pool)


def test_the_vm_key_only_does_rbd_io(ceph_lab, unique):
    with ceph_lab.role_client("vm", timeout=10) as vm:
        with vm.ioctx(POOL) as ioctx:
            assert isinstance(ioctx.get_stats(), dict)
        _denied(lambda: pools.create(vm, unique("vmpool"), 8, "copies=1,mincopies=1"))
        _denied(lambda: osds.set_flag(vm, "noout"))
        _denied(lambda: vm.mgr_command("pg dump", dumpcontents=["summary"]))


def test_keyrings_are_private(ceph_lab):
    keyrings = [ceph_lab.directory / "keys" / "ceph.client.admin.keyring"]
    keyrings += [ceph_lab.keyring(role) for role in cephx.ROLES]
    keyrings += [ceph_lab.directory / "data" / f"osd.{i}" / "keyring" for i in ceph_lab.osd_ids]
    for path in keyrings:
        mode = stat.S_IMODE(path.stat().st_mode)
        allowed = 0o640 if path == ceph_lab.keyring("api") else 0o600
        assert mode & ~allowed == 0, f"{path} has mode {mode:o}"
    assert not (ceph_lab.directory / "mon.keyring").exists(), "the initial keyring with every key is left"
