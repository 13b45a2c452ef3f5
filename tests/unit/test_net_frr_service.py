"""FrrService's failures and its work without running daemons, with stand-in programs.

The real daemons are in tests/integration/test_net_frr.py; here zebra and vtysh are
small scripts, so that a daemon that dies at start and a configuration FRR refuses can
be shown without FRR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pvc import processes
from pvc.net.frr import FrrError, FrrService, Reload
from pvc.net.frr_config import FrrParams, render_bgpd, render_zebra

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="FRR's directory is handed to its user (root)")


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def params(directory: Path) -> FrrParams:
    return FrrParams(
        node_name="hv1",
        router_id="10.0.1.1",
        cluster_network="10.0.1.0/24",
        coordinators=("10.0.1.1",),
        is_coordinator=True,
        directory=str(directory),
    )


def service(tmp_path: Path, **programs: str) -> FrrService:
    values = {"zebra": "/bin/false", "bgpd": "/bin/false", "vtysh": "true", **programs}
    return FrrService(params(tmp_path / "frr"), user="root", group="root", **values)


def test_a_daemon_that_dies_at_start_is_an_error_with_its_last_words(tmp_path: Path) -> None:
    zebra = script(tmp_path / "zebra", 'echo "zebra: cannot open the netlink socket"; exit 1')
    frr = service(tmp_path, zebra=zebra)
    with pytest.raises(FrrError, match=r"zebra ended at start: .*cannot open the netlink socket"):
        frr.start()
    assert frr.refs == {}
    assert not frr.is_running()
    recorded = frr._load_refs()
    assert not any(processes.is_alive(ref) for ref in recorded.values())


def test_a_configuration_frr_refuses_starts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    started = tmp_path / "started"
    zebra = script(tmp_path / "zebra", f"touch {started}; sleep 30")
    vtysh = script(tmp_path / "vtysh", 'echo "line 9: % Unknown command: nonsense"; exit 2')
    frr = service(tmp_path, zebra=zebra, vtysh=vtysh)
    with pytest.raises(FrrError, match="refuses the rendered configuration: line 9: % Unknown command"):
        frr.start()
    assert not started.exists()
    assert not (tmp_path / "frr" / "bgpd.conf").exists()


def test_reload_while_stopped_writes_the_files_for_the_next_start(tmp_path: Path) -> None:
    frr = service(tmp_path)
    changed = FrrParams(**{**params(tmp_path / "frr").__dict__, "asn": 64999})
    assert frr.reload(changed) is Reload.WRITTEN
    directory = tmp_path / "frr"
    assert (directory / "bgpd.conf").read_text() == render_bgpd(changed)
    assert (directory / "zebra.conf").read_text() == render_zebra(changed)
    assert "router bgp 64999" in (directory / "bgpd.conf").read_text()
    assert frr.params == changed


def test_the_directory_cannot_change_under_a_service(tmp_path: Path) -> None:
    frr = service(tmp_path)
    with pytest.raises(FrrError, match="directory"):
        frr.reload(params(tmp_path / "elsewhere"))


def test_an_unknown_frr_user_is_an_error_naming_the_directory(tmp_path: Path) -> None:
    frr = FrrService(params(tmp_path / "frr"), user="pvc-no-such-user", group="root", vtysh="true")
    with pytest.raises(FrrError, match="cannot prepare FRR's directory"):
        frr.start()
