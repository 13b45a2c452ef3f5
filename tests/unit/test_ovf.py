"""OVF descriptors of both versions, and the ones PVC refuses."""

from __future__ import annotations

import pytest

from pvc.cluster.provisioner.ovf import OvfError, parse
from pvc.lab.appliance import QCOW2, VMDK, ovf_text

GIB = 1024**3


@pytest.mark.parametrize("version", [1, 2])
def test_both_versions_give_disks_cpus_and_memory(version):
    ovf = parse(
        ovf_text([("disk0.vmdk", 2 * GIB, VMDK, 12345), ("data.qcow2", GIB, QCOW2, None)], version=version)
    )
    assert (ovf.name, ovf.vcpus, ovf.memory_mib) == ("appliance", 2, 512)
    assert [(d.href, d.capacity, d.image_format, d.file_size) for d in ovf.disks] == [
        ("disk0.vmdk", 2 * GIB, "vmdk", 12345),
        ("data.qcow2", GIB, "qcow2", None),
    ]
    assert ovf.disk_for("data.qcow2").capacity == GIB and ovf.disk_for("other") is None


def test_capacity_units_are_read():
    text = ovf_text([("d.vmdk", 8, VMDK, None)]).replace(
        b'ovf:capacity="8"', b'ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30"'
    )
    assert parse(text).disks[0].capacity == 8 * GIB


@pytest.mark.parametrize(
    "text, why",
    [
        (b"<not-xml", "not well-formed"),
        (b'<Envelope xmlns="urn:other"/>', "not an OVF"),
        (ovf_text([("../../etc/shadow", GIB, VMDK, None)]), "not a plain disk file name"),
        (ovf_text([("sub/dir.vmdk", GIB, VMDK, None)]), "not a plain disk file name"),
        (ovf_text([("disk.iso", GIB, "http://example/iso", None)]), "format PVC cannot import"),
        (ovf_text([("d.vmdk", -5, VMDK, None)]), "not a whole number"),
        (ovf_text([("d.vmdk", 0, VMDK, None)]), "out of range"),
        (ovf_text([("d.vmdk", 2**60, VMDK, None)]), "out of range"),
        (ovf_text([("d.vmdk", GIB, VMDK, None)], cpus=0), "no CPU count"),
        (ovf_text([("d.vmdk", GIB, VMDK, None)], memory_mib=2**30), "MiB of memory"),
        (ovf_text([("d.vmdk", GIB, VMDK, None)], memory_mib=2), "MiB of memory"),
        (
            ovf_text([("d.vmdk", 1, VMDK, None)]).replace(
                b'ovf:capacity="1"', b'ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^99999999999"'
            ),
            "not bytes",
        ),
        (
            ovf_text([("d.vmdk", 1, VMDK, None)]).replace(
                b'ovf:capacity="1"', b'ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^90"'
            ),
            "more than PVC reads",
        ),
        (
            ovf_text([("d.vmdk", GIB, VMDK, None)]).replace(
                b'ovf:capacity="1073741824"', b'ovf:capacity="' + b"9" * 5000 + b'"'
            ),
            "not a whole number",
        ),
        (ovf_text([]), "describes no disk"),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + ovf_text([("d.vmdk", GIB, VMDK, None)]).split(b"?>", 1)[1].replace(b"<Info>vm", b"<Info>&e;"),
            "",
        ),
    ],
)
def test_bad_descriptors_are_refused(text, why):
    if why:
        with pytest.raises(OvfError, match=why):
            parse(text)
    else:  # an external entity is never read
        ovf = parse(text)
        assert "root:" not in repr(ovf)
