"""The allowlist a VM definition must pass before PVC stores or runs it.

:func:`check_domain` walks a whole ``<domain>`` and :func:`check_device` one hot-plug
device against the rules here and in :mod:`pvc.domain_xml.device_rules`: an element,
attribute or value that is not explicitly allowed is refused with a
:class:`~pvc.domain_xml.errors.DomainXMLError` that says where and why. Whatever the
caller's role, nothing may make the node's QEMU or libvirt open a host file, socket or
device that the cluster did not provide.
"""

from __future__ import annotations

from copy import deepcopy

from pvc.domain_xml.device_rules import DEVICES
from pvc.domain_xml.policy import NVRAM_DIR, XmlPolicy, inside
from pvc.domain_xml.rules import FLAG, OPEN, TEXT, Element, Rule, one_of, refuse, rule, walk

LIFECYCLE_ACTIONS = ("destroy", "restart", "preserve", "rename-restart")
LIFECYCLE_EVENTS = ("on_poweroff", "on_reboot", "on_crash", "on_lockfailure")
CPUTUNE = (
    *("vcpupin", "emulatorpin", "iothreadpin", "shares", "period", "quota", "global_period"),
    *("global_quota", "emulator_period", "emulator_quota", "iothread_period", "iothread_quota"),
    *("vcpusched", "iothreadsched", "emulatorsched"),
)


def _text_inside(directories_of: str, what: str):
    """A check that the element's text is a file inside the policy's ``directories_of``."""

    def check(element: Element, policy: XmlPolicy, where: str) -> None:
        path = (element.text or "").strip()
        directories = getattr(policy, directories_of)
        if not directories:
            raise refuse(where, f"{what} is not allowed: no directory for it is configured on the node")
        if not inside(path, directories):
            raise refuse(where, f"{what} '{path}' is outside {', '.join(directories)}")

    return check


def _check_nvram(nvram: Element, policy: XmlPolicy, where: str) -> None:
    template = nvram.get("template")
    if template is not None and not inside(template, policy.firmware_dirs):
        raise refuse(where, f"template '{template}' is outside the firmware directories")
    path = (nvram.text or "").strip()
    root = nvram.getparent().getparent() if nvram.getparent() is not None else None
    name = (root.findtext("name") or "").strip() if root is not None else ""
    if path and path != f"{NVRAM_DIR}/{name}_VARS.fd":
        raise refuse(where, f"'{path}' is not allowed: the node keeps a VM's UEFI variables in {NVRAM_DIR}")


def _check_lifecycle(element: Element, policy: XmlPolicy, where: str) -> None:
    action = (element.text or "").strip()
    if action not in LIFECYCLE_ACTIONS:
        raise refuse(where, f"'{action}' is not allowed (allowed: {', '.join(LIFECYCLE_ACTIONS)})")


def _check_sysinfo(sysinfo: Element, policy: XmlPolicy, where: str) -> None:
    one_of(sysinfo, "type", ("smbios", "fwcfg"), where)


def _check_memory_source(source: Element, policy: XmlPolicy, where: str) -> None:
    one_of(source, "type", ("anonymous", "memfd"), where)


def _check_os_type(element: Element, policy: XmlPolicy, where: str) -> None:
    if (element.text or "").strip() != "hvm":
        raise refuse(where, f"os type '{(element.text or '').strip()}' is not allowed (only 'hvm')")


_LOADER = rule(
    "readonly type secure stateless format",
    check=_text_inside("firmware_dirs", "loader"),
    paths=TEXT,
)
OS = rule(
    "firmware",
    {
        "type": rule("arch machine", check=_check_os_type, text=True),
        "loader": _LOADER,
        "nvram": rule("template format", check=_check_nvram, paths=f"{TEXT} template"),
        "kernel": rule(check=_text_inside("image_dirs", "kernel"), paths=TEXT),
        "initrd": rule(check=_text_inside("image_dirs", "initrd"), paths=TEXT),
        "dtb": rule(check=_text_inside("image_dirs", "device tree"), paths=TEXT),
        "cmdline": rule(text=True, paths=TEXT),
        "boot": rule("dev"),
        "bootmenu": rule("enable timeout"),
        "smbios": rule("mode"),
        "bios": rule("useserial rebootTimeout"),
        "firmware": rule("", {"feature": rule("enabled name")}),
    },
)
_TEXT = rule("unit", text=True)
_SYSINFO_ENTRY = rule("name", text=True)
DOMAIN = Rule(
    attrs=frozenset({"type", "id"}),
    children={
        "name": _TEXT,
        "uuid": _TEXT,
        "title": rule(text=True, paths=TEXT),
        "description": rule(text=True, paths=TEXT),
        "metadata": FLAG,  # opaque to libvirt: its contents are left out before the walk
        "memory": rule("unit dumpCore", text=True),
        "currentMemory": _TEXT,
        "maxMemory": rule("unit slots", text=True),
        "vcpu": rule("placement cpuset current", text=True),
        "vcpus": OPEN,
        "iothreads": _TEXT,
        "iothreadids": OPEN,
        "cputune": rule(
            "",
            {name: OPEN for name in CPUTUNE},
        ),
        "memoryBacking": rule(
            "",
            {
                "hugepages": OPEN,
                "nosharepages": FLAG,
                "locked": FLAG,
                "source": rule("type", check=_check_memory_source),
                "access": rule("mode"),
                "allocation": rule("mode threads"),
                "discard": FLAG,
            },
        ),
        "memtune": OPEN,
        "blkiotune": rule("", {"weight": _TEXT}),
        "numatune": OPEN,
        "os": OS,
        "features": OPEN,
        "cpu": OPEN,
        "clock": OPEN,
        **{event: rule(check=_check_lifecycle, text=True) for event in LIFECYCLE_EVENTS},
        "pm": OPEN,
        "perf": OPEN,
        "genid": _TEXT,
        "sysinfo": rule(
            "type",
            {
                section: rule("", {"entry": _SYSINFO_ENTRY})
                for section in ("bios", "system", "baseBoard", "chassis", "oemStrings")
            }
            | {"entry": _SYSINFO_ENTRY},
            check=_check_sysinfo,
        ),
        "devices": DEVICES,
    },
)


def check_domain(root: Element, policy: XmlPolicy) -> None:
    """Refuse (DomainXMLError) a ``<domain>`` with anything the allowlist does not allow."""
    copy = _without_metadata(root)
    walk(copy, DOMAIN, policy, "domain")


def check_device(element: Element, policy: XmlPolicy) -> None:
    """Refuse (DomainXMLError) one ``<devices>`` child (for hot-plug) the allowlist does not allow."""
    assert isinstance(DEVICES.children, dict)
    spec = DEVICES.children.get(element.tag)
    where = f"devices/{element.tag}"
    if spec is None:
        raise refuse(where, f"<{element.tag}> is not allowed")
    walk(element, spec, policy, where)


def _without_metadata(root: Element) -> Element:
    """A copy of ``root`` with the contents of ``<metadata>`` (never interpreted) left out."""
    copy = deepcopy(root)
    for metadata in copy.findall("metadata"):
        for child in list(metadata):
            metadata.remove(child)
        metadata.text = None
    return copy
