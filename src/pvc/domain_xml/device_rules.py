"""The allowlist of ``<devices>``: one :class:`~pvc.domain_xml.rules.Rule` per device kind.

Disks are RBD volumes on the cluster's Ceph (admins may also use raw files under the image
directory); NICs join the cluster's bridges or tracked SR-IOV functions; consoles are
``pty`` (the node chooses where their log goes); host devices only those the node lists
as assignable, for admins. Everything not named here is refused.
"""

from __future__ import annotations

import re
import uuid as uuid_mod

from pvc.domain_xml.policy import EMULATOR, XmlPolicy, inside
from pvc.domain_xml.rules import (
    FLAG,
    OPEN,
    TEXT,
    Element,
    admin_only,
    describe,
    ip_address,
    one_of,
    refuse,
    rule,
    whole_number,
)

RBD_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(@[A-Za-z0-9_.:-]+)?")
DISK_TARGET = re.compile(r"[a-z]{2,3}[a-z]{0,3}")
MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
GUEST_AGENT = "org.qemu.guest_agent.0"
NIC_MODELS = (
    *("virtio", "virtio-transitional", "virtio-non-transitional"),
    *("e1000", "e1000e", "rtl8139", "vmxnet3"),
)
SOUND_MODELS = ("ich6", "ich7", "ich9", "ac97", "es1370", "sb16", "usb")
WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "none", "inject-nmi")
DISK_BUSES = ("virtio", "scsi", "sata", "ide", "usb")
RNG_SOURCES = ("/dev/urandom", "/dev/random", "/dev/hwrng")
CONTROLLERS = ("usb", "pci", "scsi", "virtio-serial", "sata", "ide", "fdc")


# -- disks ---------------------------------------------------------------------------------


def _check_disk(disk: Element, policy: XmlPolicy, where: str) -> None:
    kind = one_of(disk, "type", ("network", "file"), where, default="file")
    one_of(disk, "device", ("disk", "cdrom"), where, default="disk")
    source = disk.find("source")
    if kind == "network":
        if source is None:
            raise refuse(where, "a network disk needs a <source protocol='rbd' name='pool/volume'>")
        one_of(source, "protocol", ("rbd",), where + "/source")
        if not RBD_NAME.fullmatch(source.get("name", "")):
            raise refuse(where + "/source", f"name='{source.get('name', '')}' is not pool/volume[@snapshot]")
        if source.get("file") is not None:
            raise refuse(where + "/source", "a network disk takes no file")
        return
    admin_only(disk, policy, where, "a file disk (a file on the node)")
    if not policy.image_dirs:
        raise refuse(where, "file disks are not allowed: no image directory is configured on the node")
    path = source.get("file", "") if source is not None else ""
    if source is not None and source.get("name") is not None:
        raise refuse(where + "/source", "a file disk takes a file, not a name")
    if not inside(path, policy.image_dirs):
        shown = ", ".join(policy.image_dirs)
        raise refuse(where, f"file '{path}' is outside the image directory ({shown})")


def _check_driver(driver: Element, policy: XmlPolicy, where: str) -> None:
    one_of(driver, "name", ("qemu",), where, default="qemu")
    # A qcow2 (or any probed) image could name a host file as its backing file.
    one_of(driver, "type", ("raw",), where, default="raw")


def _check_host(host: Element, policy: XmlPolicy, where: str) -> None:
    one_of(host, "transport", ("tcp",), where, default="tcp")
    name = host.get("name", "")
    if name not in policy.ceph_monitors:
        known = ", ".join(sorted(policy.ceph_monitors)) or "none configured"
        raise refuse(where, f"'{name}' is not a monitor of the cluster's Ceph ({known})")
    if host.get("port") is not None:
        whole_number(host.get("port", ""), where, "port", 1, 65535)


def _check_auth(auth: Element, policy: XmlPolicy, where: str) -> None:
    user = auth.get("username", "").removeprefix("client.")
    if user not in policy.ceph_users:
        known = ", ".join(sorted(policy.ceph_users)) or "none configured"
        raise refuse(where, f"cephx user '{user}' is not the cluster's VM user ({known})")


def _check_secret(secret: Element, policy: XmlPolicy, where: str) -> None:
    one_of(secret, "type", ("ceph",), where)
    if secret.get("uuid") is not None:
        try:
            uuid_mod.UUID(secret.get("uuid", ""))
        except ValueError:
            raise refuse(where, f"uuid '{secret.get('uuid')}' is not a UUID") from None


def _check_disk_target(target: Element, policy: XmlPolicy, where: str) -> None:
    if not DISK_TARGET.fullmatch(target.get("dev", "")):
        raise refuse(where, f"dev='{target.get('dev', '')}' is not a disk name such as vda or sdb")
    if target.get("bus") is not None:
        one_of(target, "bus", DISK_BUSES, where)


_AUTH = rule("username", {"secret": rule("type uuid usage", check=_check_secret)}, check=_check_auth)
DISK = rule(
    "type device model",
    {
        "driver": rule(
            "name type cache io discard detect_zeroes iothread queues queue_size error_policy "
            "rerror_policy copy_on_read ioeventfd event_idx",
            check=_check_driver,
        ),
        "source": rule(
            "protocol name file startupPolicy index",
            {"host": rule("name port transport", check=_check_host), "auth": _AUTH},
            paths="file",
        ),
        "auth": _AUTH,
        "target": rule("dev bus tray removable rotation_rate", check=_check_disk_target),
        "boot": rule("order loadparm"),
        "readonly": FLAG,
        "shareable": FLAG,
        "transient": FLAG,
        "serial": rule(text=True),
        "wwn": rule(text=True),
        "vendor": rule(text=True),
        "product": rule(text=True),
        "address": OPEN,
        "alias": rule("name"),
        "iotune": OPEN,
        "blockio": rule("logical_block_size physical_block_size"),
        "geometry": rule("cyls heads secs trans"),
    },
    check=_check_disk,
)


# -- network interfaces --------------------------------------------------------------------


def _pci_id(address: Element | None) -> str:
    """``0000:01:00.0`` from a libvirt ``<address domain bus slot function>``."""
    if address is None:
        return ""
    try:
        parts = [int(address.get(key, ""), 0) for key in ("domain", "bus", "slot", "function")]
    except ValueError:
        return ""
    return f"{parts[0]:04x}:{parts[1]:02x}:{parts[2]:02x}.{parts[3]:x}"


def _check_interface(nic: Element, policy: XmlPolicy, where: str) -> None:
    kind = one_of(nic, "type", ("bridge", "direct", "hostdev"), where)
    source = nic.find("source")
    if kind == "bridge":
        if source is not None and source.get("dev") is not None:
            raise refuse(where + "/source", "a bridge interface is named by its bridge, not a device")
        bridge = source.get("bridge", "") if source is not None else ""
        if not policy.bridge_allowed(bridge):
            raise refuse(where, f"bridge '{bridge}' is not a bridge of a PVC network (vmbr<VNI>)")
        return
    if kind == "direct":
        device = source.get("dev", "") if source is not None else ""
        one_of(source, "mode", ("passthrough", "bridge", "vepa", "private"), where, default="passthrough")
    else:
        device = _pci_id(source.find("address") if source is not None else None)
    if device not in policy.sriov_vfs:
        raise refuse(where, f"'{device}' is not an SR-IOV virtual function the cluster tracks")


def _check_mac(mac: Element, policy: XmlPolicy, where: str) -> None:
    if not MAC.fullmatch(mac.get("address", "")):
        raise refuse(where, f"'{mac.get('address', '')}' is not a MAC address")


def _check_nic_driver(driver: Element, policy: XmlPolicy, where: str) -> None:
    if driver.get("name") is not None:
        one_of(driver, "name", ("vhost", "qemu"), where)


INTERFACE = rule(
    "type trustGuestRxFilters managed",
    {
        "mac": rule("address", check=_check_mac),
        "source": rule("bridge dev mode", {"address": OPEN}, paths="dev"),
        "model": rule("type", check=lambda e, p, w: one_of(e, "type", NIC_MODELS, w)),
        "target": rule("dev"),
        "driver": rule(
            "name queues rx_queue_size tx_queue_size txmode ioeventfd event_idx packed page_per_vq iommu ats",
            {"host": OPEN, "guest": OPEN},
            check=_check_nic_driver,
        ),
        "mtu": rule("size"),
        "link": rule("state"),
        "boot": rule("order loadparm"),
        "address": OPEN,
        "alias": rule("name"),
        "rom": rule("bar enabled"),
        "bandwidth": OPEN,
        "coalesce": OPEN,
        "tune": OPEN,
    },
    check=_check_interface,
)


# -- consoles ------------------------------------------------------------------------------


def _check_pty(element: Element, policy: XmlPolicy, where: str) -> None:
    if element.get("type", "pty") != "pty":
        raise refuse(
            where,
            f"{describe(element)} is not allowed: consoles are type 'pty' (the node keeps their log)",
        )


def _check_channel(channel: Element, policy: XmlPolicy, where: str) -> None:
    target = channel.find("target")
    if (
        channel.get("type") != "unix"
        or target is None
        or target.get("type") != "virtio"
        or target.get("name") != GUEST_AGENT
    ):
        raise refuse(where, f"the only channel allowed is the guest agent (unix, virtio '{GUEST_AGENT}')")
    source = channel.find("source")
    if source is not None:
        one_of(source, "mode", ("bind",), where + "/source", default="bind")


_CONSOLE_TARGET = rule("type port", {"model": rule("name")})
SERIAL = rule("type", {"target": _CONSOLE_TARGET, "alias": rule("name"), "address": OPEN}, check=_check_pty)
CHANNEL = rule(
    "type",
    {"source": rule("mode"), "target": rule("type name state"), "alias": rule("name"), "address": OPEN},
    check=_check_channel,
)


# -- graphics, input, sound and the rest ---------------------------------------------------


def _check_graphics(graphics: Element, policy: XmlPolicy, where: str) -> None:
    one_of(graphics, "type", ("vnc", "spice"), where)
    for key in ("port", "tlsPort", "websocket"):
        if graphics.get(key) is not None:
            whole_number(graphics.get(key, ""), where, key, -1, 65535)
    if graphics.get("listen"):
        ip_address(graphics.get("listen", ""), where, "listen")


def _check_listen(listen: Element, policy: XmlPolicy, where: str) -> None:
    one_of(listen, "type", ("address", "none"), where, default="address")
    if listen.get("address"):
        ip_address(listen.get("address", ""), where, "address")


GRAPHICS = rule(
    "type port tlsPort autoport websocket listen passwd passwdValidTo keymap sharePolicy connected "
    "defaultMode powerControl",
    {
        "listen": rule("type address", check=_check_listen),
        **{name: OPEN for name in ("channel", "image", "jpeg", "zlib", "playback", "streaming")},
        **{name: OPEN for name in ("clipboard", "mouse", "filetransfer")},
    },
    check=_check_graphics,
)


def _check_video_model(model: Element, policy: XmlPolicy, where: str) -> None:
    one_of(model, "type", ("vga", "cirrus", "virtio", "qxl", "bochs", "ramfb", "none"), where)


VIDEO = rule(
    "",
    {
        "model": rule(
            "type vram ram vgamem vram64 heads primary",
            {"acceleration": rule("accel3d accel2d"), "resolution": rule("x y")},
            check=_check_video_model,
        ),
        "address": OPEN,
        "alias": rule("name"),
    },
)


def _check_input(element: Element, policy: XmlPolicy, where: str) -> None:
    one_of(element, "type", ("mouse", "keyboard", "tablet"), where)
    if element.get("bus") is not None:
        one_of(element, "bus", ("usb", "ps2", "virtio"), where)


def _check_hostdev(hostdev: Element, policy: XmlPolicy, where: str) -> None:
    admin_only(hostdev, policy, where, "host device pass-through")
    one_of(hostdev, "mode", ("subsystem",), where, default="subsystem")
    kind = one_of(hostdev, "type", ("pci", "usb"), where)
    source = hostdev.find("source")
    if source is None:
        raise refuse(where, "a host device needs a <source>")
    if kind == "pci":
        device = _pci_id(source.find("address"))
        if device not in policy.assignable_pci:
            raise refuse(where, f"PCI device '{device}' is not listed as assignable on the node")
        return
    vendor, product = source.find("vendor"), source.find("product")
    if vendor is None or product is None or source.find("address") is not None:
        raise refuse(where, "a USB device is named by <vendor id> and <product id> only")
    ids = [found.get("id", "").lower().removeprefix("0x") for found in (vendor, product)]
    device = ":".join(ids)
    if device not in policy.assignable_usb:
        raise refuse(where, f"USB device '{device}' is not listed as assignable on the node")


HOSTDEV = rule(
    "mode type managed",
    {
        "source": rule("", {"address": OPEN, "vendor": rule("id"), "product": rule("id")}),
        "address": OPEN,
        "alias": rule("name"),
        "boot": rule("order"),
        "rom": rule("bar enabled"),
        "driver": rule("name", check=lambda e, p, w: one_of(e, "name", ("vfio",), w)),
    },
    check=_check_hostdev,
)


def _check_emulator(emulator: Element, policy: XmlPolicy, where: str) -> None:
    path = (emulator.text or "").strip()
    if not EMULATOR.fullmatch(path):
        raise refuse(where, f"emulator '{path}' is not allowed: VMs run the node's own QEMU")


def _check_rng_backend(backend: Element, policy: XmlPolicy, where: str) -> None:
    kind = one_of(backend, "model", ("random", "builtin"), where)
    text = (backend.text or "").strip()
    if kind == "random" and text and text not in RNG_SOURCES:
        raise refuse(where, f"'{text}' is not an entropy source (allowed: {', '.join(RNG_SOURCES)})")


def _check_watchdog(watchdog: Element, policy: XmlPolicy, where: str) -> None:
    one_of(watchdog, "action", WATCHDOG_ACTIONS, where, default="reset")


def _check_tpm_backend(backend: Element, policy: XmlPolicy, where: str) -> None:
    one_of(backend, "type", ("emulator",), where)


_ADDRESSED = {"address": OPEN, "alias": rule("name")}
DEVICES = rule(
    "",
    {
        "emulator": rule(check=_check_emulator, paths=TEXT, text=True),
        "disk": DISK,
        "interface": INTERFACE,
        "serial": SERIAL,
        "console": SERIAL,
        "channel": CHANNEL,
        "graphics": GRAPHICS,
        "video": VIDEO,
        "input": rule("type bus", {**_ADDRESSED, "driver": OPEN}, check=_check_input),
        "sound": rule(
            "model",
            {**_ADDRESSED, "codec": rule("type"), "audio": rule("id")},
            check=lambda e, p, w: one_of(e, "model", SOUND_MODELS, w),
        ),
        "audio": rule("id type", check=lambda e, p, w: one_of(e, "type", ("none", "spice"), w)),
        "controller": rule(
            "type index model ports vectors",
            {**_ADDRESSED, "driver": OPEN, "target": OPEN, "model": OPEN, "master": OPEN},
            check=lambda e, p, w: one_of(e, "type", CONTROLLERS, w),
        ),
        "hub": rule("type", _ADDRESSED, check=lambda e, p, w: one_of(e, "type", ("usb",), w)),
        "memballoon": rule(
            "model autodeflate freePageReporting", {**_ADDRESSED, "stats": rule("period"), "driver": OPEN}
        ),
        "rng": rule(
            "model",
            {
                **_ADDRESSED,
                "backend": rule("model", check=_check_rng_backend, paths=TEXT),
                "rate": OPEN,
                "driver": OPEN,
            },
        ),
        "watchdog": rule("model action", _ADDRESSED, check=_check_watchdog),
        "panic": rule("model", _ADDRESSED),
        "hostdev": HOSTDEV,
        "tpm": rule("model", {"backend": rule("type version", check=_check_tpm_backend), **_ADDRESSED}),
        "iommu": rule("model", {"driver": OPEN, **_ADDRESSED}),
        "vsock": rule("model", {"cid": rule("auto address"), **_ADDRESSED}),
        "memory": rule(
            "model access discard",
            {"target": OPEN, **_ADDRESSED},
            check=lambda e, p, w: one_of(e, "model", ("dimm",), w),
        ),
    },
)
