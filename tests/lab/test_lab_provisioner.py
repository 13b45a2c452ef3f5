"""The provisioner in the lab: the API reaches Patroni's leader, and keeps serving
provisioner reads and writes when the leader's member is lost (and the member rejoins)."""

from __future__ import annotations

import os
import time

import pytest

from pvc.lab import endpoint
from pvc.lab.database import leader as database_leader
from pvc.lab.database import member_roles, provisioner_answers
from pvc.lab.layout import LabLayout
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up, run_lab

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvcp", 79
#: The target: the provisioner API answers again within 30 s of losing the database leader.
TARGET = 30.0


@pytest.fixture(scope="module")
def lab():
    with lab_up("pvc-lab-prov-", PREFIX, NET_INDEX, False) as layout:
        yield layout


def test_losing_the_database_leader_keeps_the_provisioner_serving(lab: LabLayout):
    api = endpoint.client(lab, read_timeout=30)
    wait_for(lambda: provisioner_answers(api, "before"), timeout=120, interval=1)
    all_up = ["primary", "replica", "replica"]
    wait_for(lambda: sorted(member_roles(lab).values()) == all_up, timeout=120, interval=1)
    lost = database_leader(lab)
    assert lost in lab.coordinator_names
    began = time.monotonic()
    run_lab(lab.directory, "node", "kill", lost, "--service", "patroni")
    wait_for(lambda: provisioner_answers(api, "after"), timeout=60, interval=0.5)
    took = time.monotonic() - began
    print(f"database leader {lost} lost: the provisioner API answered again after {took:.1f} s")
    assert took <= TARGET
    assert database_leader(lab) not in (None, lost)
    # Nothing written before the loss is lost.
    names = [t["name"] for t in api.get("/provisioner/template/storage").data]
    assert names == ["after", "before"]
    # The lost member is started again and rejoins as a replica of the new leader.
    run_lab(lab.directory, "up")
    wait_for(lambda: member_roles(lab).get(lost) == "replica", timeout=120, interval=1)
