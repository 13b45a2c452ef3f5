"""Every known way to reach the host through a VM definition, tried through the API.

Each escalation goes through define (``POST /vm``), modify (``PUT /vm/{vm}``) and, for
disks and NICs, hot-plug (``POST /vm/{vm}/device``), with an operator key unless it says
otherwise, and must come back 400 with the reason — and leave nothing behind.
"""

from __future__ import annotations

import json

import pytest

from pvc.domain_xml.build import DomainSpec, build
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import paths
from tests.api.conftest import TOKENS, start_hypervisor_nodes

PREFIX = "/api/v1"
NODES = ["hv1"]
MONITOR = "10.0.0.1"
UUID = "7d3a9c54-6f0e-4d1b-9a55-0c2a1f3e8b11"


def policy(image_dir: str) -> XmlPolicy:
    return XmlPolicy(
        image_dirs=(image_dir,),
        ceph_monitors=frozenset({MONITOR}),
        ceph_users=frozenset({"pvc-vm"}),
        assignable_pci=frozenset({"0000:01:00.0"}),
        assignable_usb=frozenset({"046d:c52b"}),
    )


def domain(images: str, *, name: str = "esc", devices: str = "", top: str = "", os_extra: str = "") -> str:
    """A definition the allowlist accepts for any role, plus the given pieces."""
    return f"""<domain type='qemu'>
  <name>{name}</name><uuid>{UUID}</uuid>
  <metadata><app:x xmlns:app='urn:example'>/etc/kept-as-opaque-data</app:x></metadata>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{images}/vmlinux</kernel>
    <initrd>{images}/initrd</initrd><cmdline>console=ttyS0</cmdline>{os_extra}</os>
  <features><acpi/></features><cpu mode='host-model'><topology sockets='1' cores='1' threads='1'/></cpu>
  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_crash>restart</on_crash>{top}
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='vms/esc_disk0'><host name='{MONITOR}' port='6789'/></source>
      <auth username='pvc-vm'><secret type='ceph' uuid='{UUID}'/></auth>
      <target dev='vda' bus='virtio'/></disk>
    <interface type='bridge'><mac address='52:54:00:12:34:56'/><source bridge='vmbr100'/>
      <model type='virtio'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
    <video><model type='virtio'/></video><input type='tablet' bus='usb'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='virtio'/>{devices}
  </devices>
</domain>"""


RBD_DISK = (
    "<disk type='network' device='disk'><source protocol='rbd' name='vms/{vol}'>{extra}</source>"
    "<target dev='vdb' bus='virtio'/></disk>"
)
HOSTDEV_PCI = (
    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
    "<address domain='0x0000' bus='0x0{bus}' slot='0x00' function='0x0'/></source></hostdev>"
)

#: (what, where the piece goes, the piece, words of the reason). "{images}" is the image directory.
ESCALATIONS = [
    (
        "serial to a host file",
        "devices",
        "<serial type='file'><source path='/etc/shadow'/></serial>",
        "'pty'",
    ),
    ("serial log file", "devices", "<serial type='pty'><log file='/etc/shadow'/></serial>", "<log>"),
    (
        "console on a host device",
        "devices",
        "<console type='dev'><source path='/dev/sda'/></console>",
        "'pty'",
    ),
    (
        "serial on a unix socket",
        "devices",
        "<serial type='unix'><source path='/run/x.sock'/></serial>",
        "'pty'",
    ),
    (
        "serial over tcp",
        "devices",
        "<serial type='tcp'><source mode='connect' host='10.0.0.9'/></serial>",
        "'pty'",
    ),
    (
        "parallel port",
        "devices",
        "<parallel type='file'><source path='/etc/shadow'/></parallel>",
        "<parallel>",
    ),
    (
        "file disk (operator)",
        "devices",
        "<disk type='file'><source file='{images}/d.img'/><target dev='vdb'/></disk>",
        "needs an admin key",
    ),
    (
        "block disk",
        "devices",
        "<disk type='block'><source dev='/dev/sda'/><target dev='vdb'/></disk>",
        "type='block'",
    ),
    (
        "volume disk",
        "devices",
        "<disk type='volume'><source pool='default' volume='v'/><target dev='vdb'/></disk>",
        "type='volume'",
    ),
    (
        "vhost-user disk",
        "devices",
        "<disk type='vhostuser'><source type='unix' path='/run/v'/><target dev='vdb'/></disk>",
        "type='vhostuser'",
    ),
    (
        "nbd disk",
        "devices",
        "<disk type='network'><source protocol='nbd' name='x'><host name='10.0.0.9'/>"
        "</source><target dev='vdb'/></disk>",
        "protocol='nbd'",
    ),
    (
        "rbd with its own ceph.conf",
        "devices",
        RBD_DISK.format(vol="c", extra="<config file='/etc/ceph/x.conf'/>"),
        "<config>",
    ),
    (
        "rbd on a foreign monitor",
        "devices",
        RBD_DISK.format(vol="c", extra="<host name='192.0.2.7'/>"),
        "not a monitor",
    ),
    (
        "rbd monitor over a socket",
        "devices",
        RBD_DISK.format(vol="c", extra=f"<host name='{MONITOR}' transport='unix' socket='/run/x'/>"),
        "'socket'",
    ),
    (
        "rbd as another cephx user",
        "devices",
        "<disk type='network'><source protocol='rbd' name='vms/c'/><auth username='admin'>"
        "<secret type='ceph' usage='client.admin'/></auth><target dev='vdb'/></disk>",
        "cephx user 'admin'",
    ),
    (
        "qcow2 image (backing file on the host)",
        "devices",
        "<disk type='network'><driver name='qemu' type='qcow2'/><source protocol='rbd' name='vms/c'/>"
        "<target dev='vdb'/></disk>",
        "type='qcow2'",
    ),
    (
        "backing store",
        "devices",
        "<disk type='network'><source protocol='rbd' name='vms/c'/><backingStore "
        "type='file'><source file='/etc/shadow'/></backingStore><target dev='vdb'/></disk>",
        "<backingStore>",
    ),
    (
        "seclabel on a disk",
        "devices",
        "<disk type='network'><source protocol='rbd' name='vms/c'>"
        "<seclabel model='none'/></source><target dev='vdb'/></disk>",
        "<seclabel>",
    ),
    (
        "vhost-user NIC",
        "devices",
        "<interface type='vhostuser'><source type='unix' path='/run/s' mode='client'/></interface>",
        "type='vhostuser'",
    ),
    (
        "hostdev NIC",
        "devices",
        "<interface type='hostdev'><source><address type='pci' domain='0' bus='1' "
        "slot='0' function='1'/></source></interface>",
        "SR-IOV",
    ),
    (
        "macvtap on a host NIC",
        "devices",
        "<interface type='direct'><source dev='eth0' mode='bridge'/></interface>",
        "SR-IOV",
    ),
    (
        "ethernet NIC with a script",
        "devices",
        "<interface type='ethernet'><script path='/tmp/x.sh'/></interface>",
        "type='ethernet'",
    ),
    ("user-mode NIC", "devices", "<interface type='user'/>", "type='user'"),
    (
        "libvirt network",
        "devices",
        "<interface type='network'><source network='default'/></interface>",
        "type='network'",
    ),
    (
        "a host bridge",
        "devices",
        "<interface type='bridge'><source bridge='br-storage'/></interface>",
        "not a bridge of a PVC network",
    ),
    (
        "NIC ROM from a host file",
        "devices",
        "<interface type='bridge'><source bridge='vmbr100'/><rom file='/etc/shadow'/></interface>",
        "'file'",
    ),
    (
        "NIC on a given tap fd",
        "devices",
        "<interface type='bridge'><source bridge='vmbr100'/><backend tap='/dev/net/tun'/></interface>",
        "<backend>",
    ),
    (
        "NIC script",
        "devices",
        "<interface type='bridge'><source bridge='vmbr100'/><script path='/tmp/x.sh'/></interface>",
        "<script>",
    ),
    ("another emulator", "emulator", "/bin/sh", "emulator '/bin/sh'"),
    (
        "nvdimm on a host file",
        "devices",
        "<memory model='nvdimm'><source><path>/etc/shadow</path></source>"
        "<target><size unit='MiB'>1</size></target></memory>",
        "model='nvdimm'",
    ),
    (
        "virtio-pmem",
        "devices",
        "<memory model='virtio-pmem'><source><path>/etc/x</path></source></memory>",
        "model='virtio-pmem'",
    ),
    (
        "TPM pass-through",
        "devices",
        "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>",
        "type='passthrough'",
    ),
    (
        "evdev pass-through",
        "devices",
        "<input type='evdev'><source dev='/dev/input/event0'/></input>",
        "type='evdev'",
    ),
    (
        "input pass-through",
        "devices",
        "<input type='passthrough' bus='virtio'><source evdev='/dev/input/e0'/></input>",
        "type='passthrough'",
    ),
    ("PCI pass-through (operator)", "devices", HOSTDEV_PCI.format(bus=1), "needs an admin key"),
    (
        "SCSI pass-through",
        "devices",
        "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/></source></hostdev>",
        "needs an admin key",
    ),
    (
        "host filesystem",
        "devices",
        "<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>",
        "<filesystem>",
    ),
    ("shared memory", "devices", "<shmem name='x'><server path='/run/x'/></shmem>", "<shmem>"),
    ("smartcard", "devices", "<smartcard mode='host'/>", "<smartcard>"),
    (
        "USB redirection",
        "devices",
        "<redirdev bus='usb' type='tcp'><source mode='connect' host='10.0.0.9' service='4000'/></redirdev>",
        "<redirdev>",
    ),
    (
        "a channel to a host socket",
        "devices",
        "<channel type='unix'><source mode='bind' path='/run/x.sock'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
        "'path'",
    ),
    (
        "spicevmc channel",
        "devices",
        "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>",
        "guest agent",
    ),
    (
        "entropy from a host file",
        "devices",
        "<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>",
        "not an entropy source",
    ),
    (
        "entropy from a chardev",
        "devices",
        "<rng model='virtio'><backend model='egd' type='tcp'/></rng>",
        "'type'",
    ),
    ("watchdog dumps", "devices", "<watchdog model='i6300esb' action='dump'/>", "action='dump'"),
    ("audio into a host file", "devices", "<audio id='1' type='file' path='/etc/shadow'/>", "'path'"),
    (
        "VNC on a host socket",
        "devices",
        "<graphics type='vnc'><listen type='socket' socket='/run/v'/></graphics>",
        "'socket'",
    ),
    ("VNC port not a number", "devices", "<graphics type='vnc' port='abc'/>", "port"),
    (
        "GL render node",
        "devices",
        "<video><model type='virtio'><acceleration accel3d='yes' "
        "rendernode='/dev/dri/renderD128'/></model></video>",
        "'rendernode'",
    ),
    (
        "loader from a host file",
        "os",
        "<loader readonly='yes' type='pflash'>/etc/shadow</loader>",
        "outside /usr/share/OVMF",
    ),
    ("nvram in a host file", "os", "<nvram>/etc/shadow</nvram>", "UEFI variables"),
    ("nvram template from a host file", "os", "<nvram template='/etc/shadow'/>", "outside the firmware"),
    ("ACPI table from a host file", "os", "<acpi><table type='slic'>/etc/shadow</table></acpi>", "<acpi>"),
    ("kernel from a host file", "kernel", "/etc/shadow", "outside"),
    ("kernel climbing out of the image directory", "kernel", "{images}/../../etc/shadow", "outside"),
    ("device tree from a host file", "os", "<dtb>/etc/shadow</dtb>", "outside"),
    (
        "QEMU command line",
        "top",
        "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:arg value='-chardev'/></qemu:commandline>",
        "namespace",
    ),
    (
        "QEMU override",
        "top",
        "<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:device alias='x'/></qemu:override>",
        "namespace",
    ),
    (
        "QEMU capabilities",
        "top",
        "<qemu:capabilities xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:add capability='x'/></qemu:capabilities>",
        "namespace",
    ),
    (
        "XInclude of a host file",
        "top",
        "<xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='/etc/shadow' parse='text'/>",
        "namespace",
    ),
    ("no security label", "top", "<seclabel type='none' model='none'/>", "<seclabel>"),
    (
        "firmware config from a host file",
        "top",
        "<sysinfo type='fwcfg'><entry name='opt/x' file='/etc/shadow'/></sysinfo>",
        "'file'",
    ),
    ("core dumps on crash", "top", "<on_reboot>coredump-destroy</on_reboot>", "coredump-destroy"),
    (
        "memory backed by a host file",
        "top",
        "<memoryBacking><source type='file'/></memoryBacking>",
        "type='file'",
    ),
    (
        "I/O tuning of a host device",
        "top",
        "<blkiotune><device><path>/dev/sda</path></device></blkiotune>",
        "<device>",
    ),
    ("cgroup partition", "top", "<resource><partition>/machine</partition></resource>", "<resource>"),
    ("cache allocation", "top", "<cputune><cachetune vcpus='0'/></cputune>", "<cachetune>"),
    ("launch security", "top", "<launchSecurity type='sev'/>", "<launchSecurity>"),
    ("a boot loader", "top", "<bootloader>/usr/bin/pygrub</bootloader>", "<bootloader>"),
    (
        "a path in a free-form section",
        "top",
        "<features><kvm><hidden state='/etc/shadow'/></kvm></features>",
        "host path",
    ),
]


def _place(images: str, where: str, piece: str) -> str:
    piece = piece.replace("{images}", images)
    if where == "devices":
        return domain(images, devices=piece)
    if where == "os":
        return domain(images, os_extra=piece)
    if where == "top":
        return domain(images, top=piece)
    if where == "kernel":
        return domain(images).replace(f"<kernel>{images}/vmlinux</kernel>", f"<kernel>{piece}</kernel>")
    if where == "emulator":
        return domain(images).replace("/usr/bin/qemu-system-x86_64", piece)
    raise AssertionError(where)


@pytest.fixture
def xml_api(api_factory, cluster, test_driver_uri, tmp_path):
    images = str(tmp_path / "images")
    client, context = api_factory(auth=True, xml_policy=policy(images))
    start_hypervisor_nodes(cluster, context, NODES, test_driver_uri)
    # the definitions' interfaces join network 100, which must be defined
    added = call(client, "POST", "/network", vni="100", description="net100", nettype="bridged")
    assert added.status_code == 200, added.json
    return client, context, images


def call(client, method: str, path: str, role: str = "operator", **data):
    return client.open(PREFIX + path, method=method, data=data, headers={"X-Api-Key": TOKENS[role]})


@pytest.mark.parametrize(("what", "where", "piece", "words"), ESCALATIONS, ids=[e[0] for e in ESCALATIONS])
def test_escalation_is_refused_by_define_and_modify(xml_api, what, where, piece, words):
    client, context, images = xml_api
    bad = _place(images, where, piece)
    response = call(client, "POST", "/vm", xml=bad, node="hv1")
    assert response.status_code == 400, (what, response.json)
    assert words in response.json["message"], (what, response.json["message"])
    assert context.cluster.cache.vm_uuid_by_name("esc") is None  # nothing stored
    assert call(client, "POST", "/vm", xml=domain(images), node="hv1").status_code == 200
    before = context.cluster.cache.vm(UUID).xml
    response = call(client, "PUT", "/vm/esc", xml=bad)
    assert response.status_code == 400, (what, response.json)
    assert words in response.json["message"], (what, response.json["message"])
    assert context.cluster.cache.vm(UUID).xml == before  # nothing changed


HOTPLUG = [e for e in ESCALATIONS if e[1] == "devices" and e[2].startswith(("<disk", "<interface"))]


def test_escalations_are_refused_by_hotplug(xml_api):
    client, context, images = xml_api
    plain = build(DomainSpec(name="esc", memory_mib=64))  # what the test node can start
    assert call(client, "POST", "/vm", xml=plain, node="hv1").status_code == 200
    response = call(client, "POST", "/vm/esc/state", state="start", wait="true")
    assert response.status_code == 200, response.json
    assert len(HOTPLUG) >= 20
    for what, _, piece, words in HOTPLUG:
        response = call(client, "POST", "/vm/esc/device", xml=piece.replace("{images}", images))
        assert response.status_code == 400, (what, response.json)
        assert words in response.json["message"], (what, response.json["message"])
    assert context.cluster.store.children(paths.TASKS) == []  # nothing queued


def test_what_the_cluster_provides_is_accepted_for_an_operator(xml_api):
    client, _, images = xml_api
    response = call(client, "POST", "/vm", xml=domain(images), node="hv1")
    assert response.status_code == 200, response.json
    assert call(client, "GET", "/vm/esc", role="read-only").json[0]["name"] == "esc"


def test_admin_only_devices_need_an_admin_and_the_nodes_consent(xml_api):
    client, context, images = xml_api
    file_disk = f"<disk type='file'><source file='{images}/d.img'/><target dev='vdb'/></disk>"
    outside = "<disk type='file'><source file='/var/lib/other/d.img'/><target dev='vdb'/></disk>"
    usb = (
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x{v}'/>"
        "<product id='0xc52b'/></source></hostdev>"
    )
    refused = [
        (outside, "outside the image directory"),
        (f"<disk type='file'><source file='{images}/../x/d.img'/><target dev='vdb'/></disk>", "outside"),
        (HOSTDEV_PCI.format(bus=2), "not listed as assignable"),
        (usb.format(v="1234"), "not listed as assignable"),
    ]
    for piece, words in refused:
        response = call(client, "POST", "/vm", role="admin", xml=domain(images, devices=piece), node="hv1")
        assert response.status_code == 400 and words in response.json["message"], (piece, response.json)
    admin_xml = domain(images, devices=file_disk + HOSTDEV_PCI.format(bus=1) + usb.format(v="046d"))
    response = call(client, "POST", "/vm", role="admin", xml=admin_xml, node="hv1")
    assert response.status_code == 200, response.json
    # An operator may change the VM as long as the admin's devices stay as they are...
    changed = admin_xml.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>").replace(
        "sockets='1' cores='1'", "sockets='2' cores='1'"
    )
    response = call(client, "PUT", "/vm/esc", xml=changed)
    assert response.status_code == 200, response.json
    assert context.cluster.cache.vm(UUID).meta.vcpus == 2
    # ...but not add or alter one.
    altered = changed.replace(f"{images}/d.img", f"{images}/other.img")
    response = call(client, "PUT", "/vm/esc", xml=altered)
    assert response.status_code == 400 and "needs an admin key" in response.json["message"]


def test_restore_refuses_a_backup_with_a_forbidden_definition(xml_api):
    client, context, images = xml_api
    assert call(client, "POST", "/vm", xml=domain(images), node="hv1").status_code == 200
    data = json.loads(call(client, "GET", "/backup", role="admin").json)
    key = paths.domain_xml(UUID)
    assert key in data
    data[key] = _place(images, "devices", "<serial type='file'><source path='/etc/shadow'/></serial>")
    response = call(
        client,
        "POST",
        "/restore",
        role="admin",
        cluster_data=json.dumps(data),
        **{"yes-i-really-mean-it": "yes"},
    )
    assert response.status_code == 400, response.json
    assert "'pty'" in response.json["message"] and key in response.json["message"]
    assert "/etc/shadow" not in context.cluster.cache.vm(UUID).xml
