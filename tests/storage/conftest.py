"""A real one-OSD Ceph for the storage tests: started once per session, stopped at its end."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest
import rbd

from pvc.cluster.storage.access import StorageAccess
from pvc.config import StorageSection
from pvc.config.backup import BackupSection
from pvc.config.provisioner import ProvisionerSection
from pvc.lab import standalone_ceph
from pvc.node.phases import PrimaryPhases
from pvc.node.schedules import schedules_phase
from pvc.storage import snapshots, volumes
from pvc.storage.client import CephClient
from tests.integration.conftest import (  # noqa: F401  (fixtures the provisioner tests use)
    cluster,
    make_store,
    store,
    test_driver_uri,
    zk_hosts,
    zk_server,
)
from tests.integration.postgres_fixtures import db_name, pg_server, provisioner_db  # noqa: F401
from tests.storage.api_harness import api_over_ceph

#: Ports of the test cluster, apart from the lab's defaults (3310/6799, 7400-7600).
TEST_PORTS = standalone_ceph.Ports(mon_v2=13310, mon_v1=16799, bind_min=17400, bind_max=17600)
#: The RBD pool the lab creates for volume and snapshot tests (8 PGs, one copy).
POOL = "rbd"
MIB = 1024 * 1024


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture(scope="session")
def ceph_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[standalone_ceph.LabCeph]:
    missing = [tool for tool in ("ceph-mon", "ceph-mgr", "ceph-osd", "monmaptool") if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"Ceph is not installed ({', '.join(missing)} missing): run scripts/setup.sh", pytrace=False
        )
    taken = [port for port in (TEST_PORTS.mon_v2, TEST_PORTS.mon_v1) if _port_taken(port)]
    if taken:
        pytest.fail(f"test Ceph monitor port(s) {taken} already in use on 127.0.0.1", pytrace=False)
    directory = tmp_path_factory.mktemp("ceph")
    lab = standalone_ceph.start(directory, 1, ports=TEST_PORTS, pool=POOL, pool_pgs=8, die_with_parent=True)
    try:
        yield lab
    finally:
        lab.stop(grace=0)
        # keep the logs, drop the (sparse, but large) OSD block files
        shutil.rmtree(directory / "data", ignore_errors=True)


@pytest.fixture(scope="session")
def ceph_client(ceph_lab: standalone_ceph.LabCeph) -> Iterator[CephClient]:
    """One client shared by the tests, as a node daemon shares one."""
    with ceph_lab.client(timeout=20) as client:
        yield client


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses: ``unique("vol")`` -> ``"vol-3f2a9c1b"``."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def access(ceph_lab: standalone_ceph.LabCeph) -> Iterator[StorageAccess]:
    """The API's Ceph access to the session's Ceph (its own client, closed after the test)."""
    shared = StorageAccess(StorageSection(**ceph_lab.storage_config("api"), command_timeout=20))
    yield shared
    shared.close()


@pytest.fixture
def base_image(ceph_client, unique):
    """A small base volume with a snapshot, the source of copy-on-write clones."""
    name = unique("base")
    volumes.create(ceph_client, POOL, name, 64 * MIB)
    snapshots.create(ceph_client, POOL, name, "golden")
    yield name
    for child in volumes.names(ceph_client, POOL):  # the clones the test made of it go first
        parent = volumes.info(ceph_client, POOL, child).to_dict().get("parent") or {}
        if parent.get("volume") == name:
            volumes.break_locks(ceph_client, POOL, child)
            volumes.remove(ceph_client, POOL, child)
    snap = snapshots.get(ceph_client, POOL, name, "golden")
    if snap.protected:
        with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, name) as image:
            image.unprotect_snap("golden")
    volumes.remove(ceph_client, POOL, name, with_snapshots=True)


@pytest.fixture
def prov_node(cluster, ceph_lab, test_driver_uri, tmp_path):  # noqa: F811
    """``prov_node("hv1")``: a node daemon with Ceph and libvirt's test driver; hv1 is the
    only coordinator."""

    def start(name: str):
        return cluster(
            name,
            ["hv1"],
            hypervisor_uri=test_driver_uri,
            shutdown_timeout=1.0,
            storage=ceph_lab.storage_config("node"),
            state_dir=str(tmp_path / name),
        )

    return start


@pytest.fixture
def prov_primary(prov_node):
    """hv1, the primary coordinator the provisioner's tasks run on."""
    return prov_node("hv1")


@pytest.fixture
def prov_api(make_store, prov_primary, ceph_client, access, tmp_path, provisioner_db):  # noqa: F811
    """(test client, context): an API with Ceph and the database; hv1 primary with Ceph and libvirt."""
    with api_over_ceph(make_store, ceph_client, access, tmp_path / "api") as (client, context):
        context.database = provisioner_db
        context.provisioner = ProvisionerSection(domain_type="qemu", hook_timeout=60)
        yield client, context


@pytest.fixture
def new_volume(ceph_client, unique):
    """``new_volume(prefix)``: a new 64 MiB RBD volume, removed with its snapshots afterwards."""
    made = []

    def create(prefix: str = "vmdisk") -> str:
        name = unique(prefix)
        volumes.create(ceph_client, POOL, name, 64 * MIB)
        made.append(name)
        return name

    yield create
    for name in made:
        if volumes.exists(ceph_client, POOL, name):
            volumes.break_locks(ceph_client, POOL, name)
            volumes.remove(ceph_client, POOL, name, with_snapshots=True)


@pytest.fixture
def node_backup(tmp_path) -> dict:
    """The ``backup`` section of hv1's configuration in :func:`vm_api` (modules that test the
    schedules give their own); ``tmp_path / "backups"`` exists; sends may go anywhere."""
    return {"paths": [str(tmp_path / "backups")], "send_destinations": ["*"]}


@pytest.fixture
def vm_api(make_store, cluster, ceph_lab, ceph_client, access, test_driver_uri, tmp_path, node_backup):  # noqa: F811
    """(test client, context): an API with Ceph access; hv1 primary with Ceph and libvirt;
    both allow VM snapshot exports under ``tmp_path / "backups"``; hv1's backup section is
    ``node_backup``."""
    backups = tmp_path / "backups"
    backups.mkdir(exist_ok=True)
    # as pvcnoded's phases would: the schedules' timer, when the section has an interval
    phase = schedules_phase(make_store(), "hv1", BackupSection.model_validate(node_backup))
    cluster(
        "hv1",
        ["hv1"],
        hypervisor_uri=test_driver_uri,
        shutdown_timeout=1.0,
        storage=ceph_lab.storage_config("node"),
        state_dir=str(tmp_path / "hv1"),
        backup=node_backup,
        phases=PrimaryPhases([phase] if phase is not None else []),
    )
    with api_over_ceph(make_store, ceph_client, access, tmp_path / "api") as (client, context):
        context.backup = BackupSection(paths=[str(backups)], send_destinations=["*"])
        yield client, context
