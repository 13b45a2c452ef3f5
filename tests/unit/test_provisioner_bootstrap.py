"""The ``debootstrap`` directive an install hook may answer with: what is accepted, and the
installer's command line built from it (never a shell line from the script's values)."""

from __future__ import annotations

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner.bootstrap import GIB, directive, filesystem_blocks, mmdebstrap_argv

MIRROR = "http://mirror.example/debian"


def vm_data(**disk) -> dict:
    volumes = [
        {"disk_id": "sda", "pool": "vms", "volume": "web1_sda", "source_volume": "base@golden", "size_gb": 4},
        {"disk_id": "sdb", "pool": "vms", "volume": "web1_sdb", "source_volume": None, "size_gb": 8, **disk},
    ]
    return {"name": "web1", "volumes": volumes}


def asked(**settings) -> dict:
    return {"debootstrap": settings}


def test_no_directive_is_no_install():
    assert directive(None, vm_data(), [MIRROR]) is None
    assert directive({"other": 1}, vm_data(), [MIRROR]) is None
    assert directive("text", vm_data(), [MIRROR]) is None


def test_defaults_pick_the_first_new_disk_and_the_first_mirror():
    install = directive(asked(), vm_data(), [MIRROR, "http://other/debian"])
    assert install is not None
    assert (install.disk_id, install.volume, install.pool) == ("sdb", "web1_sdb", "vms")
    assert install.size == 8 * GIB
    assert install.device == "/dev/vdb"
    assert (install.suite, install.variant, install.components, install.packages) == (
        "bookworm",
        "minbase",
        ("main",),
        (),
    )
    assert install.mirror == MIRROR
    assert install.hostname == "web1"


def test_the_disk_mounted_at_root_is_preferred():
    data = vm_data()
    data["volumes"].append(
        {
            "disk_id": "sdc",
            "pool": "vms",
            "volume": "web1_sdc",
            "source_volume": None,
            "size_gb": 2,
            "mountpoint": "/",
        }
    )
    install = directive(asked(), data, [MIRROR])
    assert install is not None and install.disk_id == "sdc" and install.device == "/dev/vdc"


def test_packages_and_components_come_as_lists_or_comma_separated_text():
    install = directive(
        asked(packages="openssh-server, cloud-init,openssh-server", components=["main", "contrib"]),
        vm_data(),
        [MIRROR],
    )
    assert install is not None
    assert install.packages == ("openssh-server", "cloud-init")
    assert install.components == ("main", "contrib")
    assert install.cloud_init


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mirror": "http://evil.example/debian"}, "not one the cluster allows"),
        ({"disk": "sda"}, "made from a source volume"),
        ({"disk": "sdz"}, "has no disk 'sdz'"),
        ({"suite": "bookworm; rm -rf /"}, "not a valid suite"),
        ({"suite": 5}, "suite must be a short text"),
        ({"variant": "everything"}, "variant must be one of"),
        ({"packages": "vim,$(reboot)"}, "is not a valid package name"),
        ({"packages": ["--allow-unauthenticated"]}, "is not a valid package name"),
        ({"packages": [f"p{i}" for i in range(201)]}, "at most 200"),
        ({"components": "main non free"}, "is not a valid component name"),
        ({"hook": "echo hi"}, "unknown settings hook"),
    ],
)
def test_bad_directives_are_refused_naming_the_problem(settings, message):
    with pytest.raises(ClusterError, match=message):
        directive(asked(**settings), vm_data(), [MIRROR])


def test_a_directive_that_is_not_a_mapping_or_a_disk_without_size_is_refused():
    with pytest.raises(ClusterError, match="must be a mapping"):
        directive({"debootstrap": ["x"]}, vm_data(), [MIRROR])
    with pytest.raises(ClusterError, match="has no size"):
        directive(asked(), vm_data(size_gb=None), [MIRROR])
    with pytest.raises(ClusterError, match="the system is ext4"):
        directive(asked(), vm_data(filesystem="xfs"), [MIRROR])
    with pytest.raises(ClusterError, match="no mirror is allowed"):
        directive(asked(), vm_data(), [])
    only_sources = {"name": "web1", "volumes": vm_data()["volumes"][:1]}
    with pytest.raises(ClusterError, match="no new disk"):
        directive(asked(), only_sources, [MIRROR])


def test_the_command_line_runs_unshared_into_a_tarball_with_quoted_customisations(tmp_path):
    install = directive(asked(packages="cloud-init"), vm_data(), [MIRROR])
    assert install is not None
    argv = mmdebstrap_argv(install, tmp_path / "root.tar")
    assert argv[:3] == ["mmdebstrap", "--mode=unshare", "--format=tar"]
    assert argv[-3:] == ["bookworm", str(tmp_path / "root.tar"), MIRROR]
    assert "--include=cloud-init" in argv
    hooks = [a.removeprefix("--customize-hook=") for a in argv if a.startswith("--customize-hook=")]
    assert any("/etc/hostname" in hook and "'web1\n'" in hook for hook in hooks)
    assert any("LABEL=pvc-root / ext4" in hook for hook in hooks)
    assert any("169.254.169.254" in hook for hook in hooks)


def test_an_unusual_vm_name_does_not_become_the_hostname():
    data = {**vm_data(), "name": "web.1'$(x)"}
    install = directive(asked(), data, [MIRROR])
    assert install is not None and install.hostname == "localhost"


def test_the_filesystem_has_room_for_the_files_and_the_first_boot():
    blocks = filesystem_blocks(200 * 1024**2)
    assert 250 * 1024**2 <= blocks * 4096 <= 320 * 1024**2
