"""The allowlist's building blocks: a :class:`Rule` per element, and the checks all share.

A rule names the attributes and child elements an element may have; anything else is
refused. ``FREE`` marks parts of the document that cannot reach the host (CPU features,
clock timers, PCI addresses...): any attribute or child is allowed there, but the rules
every element obeys still hold — no foreign namespaces, and no value that names a host
file (:func:`check_values`). A rule's ``check`` looks at what the names alone cannot: an
element's type, which bridge it joins, which path it names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.policy import XmlPolicy

Element = etree._Element
Check = Callable[[Element, XmlPolicy, str], None]


class _Free:
    """Marker: any attributes, or any child elements, are allowed here."""

    def __repr__(self) -> str:
        return "FREE"


FREE = _Free()
#: The key under which a rule claims the element's text as a path it checks itself.
TEXT = "#text"
#: Attribute names that name host files, sockets or devices wherever they appear.
HOST_FILE_ATTRIBUTES = {
    *("file", "path", "socket", "dir", "template"),
    *("rendernode", "script", "dev", "tap", "vhost"),
}


@dataclass(frozen=True)
class Rule:
    """What one element may hold: attributes, children (tag → rule), a check of its own.

    ``paths`` are the attributes (or :data:`TEXT`) whose host paths ``check`` validates
    itself; everywhere else a value that looks like a host path is refused.
    """

    attrs: frozenset[str] | _Free = frozenset()
    children: Mapping[str, Rule] | _Free = field(default_factory=dict)
    check: Check | None = None
    paths: frozenset[str] = frozenset()
    text: bool = False  # whether the element may carry (non-path) text


def rule(
    attrs: str | _Free = "",
    children: Mapping[str, Rule] | _Free | None = None,
    check: Check | None = None,
    paths: str = "",
    text: bool = False,
) -> Rule:
    """A :class:`Rule` from space-separated attribute names (shorthand for the tables)."""
    return Rule(
        attrs=attrs if isinstance(attrs, _Free) else frozenset(attrs.split()),
        children={} if children is None else children,
        check=check,
        paths=frozenset(paths.split()),
        text=text,
    )


#: An element that may hold anything harmless (see the module docstring).
OPEN = Rule(attrs=FREE, children=FREE, text=True)
#: An element with no attributes or children (a flag such as ``<readonly/>``).
FLAG = rule()


def refuse(where: str, reason: str) -> DomainXMLError:
    """The error for something the allowlist does not allow, naming where it is."""
    return DomainXMLError(f"{where}: {reason}")


def describe(element: Element) -> str:
    """``<disk type='file'>``: an element as messages name it."""
    kind = element.get("type")
    return f"<{element.tag} type='{kind}'>" if kind else f"<{element.tag}>"


def walk(element: Element, spec: Rule, policy: XmlPolicy, where: str) -> None:
    """Check ``element`` and everything under it against ``spec``; DomainXMLError on the first refusal."""
    _check_namespace(element, where)
    if not isinstance(spec.attrs, _Free):
        for name in element.attrib:
            if name not in spec.attrs:
                raise refuse(where, f"attribute '{name}' is not allowed here")
    check_values(element, spec, where)
    if spec.check is not None:
        spec.check(element, policy, where)
    for child in element:
        if not isinstance(child.tag, str):  # comments and processing instructions
            continue
        child_where = f"{where}/{_local(child)}"
        if isinstance(spec.children, _Free):
            walk(child, OPEN, policy, child_where)
            continue
        child_spec = spec.children.get(child.tag)
        if child_spec is None:
            _check_namespace(child, child_where)
            raise refuse(child_where, f"<{child.tag}> is not allowed inside <{element.tag}>")
        walk(child, child_spec, policy, child_where)


def _local(element: Element) -> str:
    return etree.QName(element).localname if "}" in element.tag else element.tag


def _check_namespace(element: Element, where: str) -> None:
    if "}" in element.tag:
        namespace = etree.QName(element).namespace
        raise refuse(where, f"elements of namespace '{namespace}' (QEMU pass-through...) are not allowed")
    for name in element.attrib:
        if "}" in name:
            raise refuse(where, f"attribute '{name}' of a foreign namespace is not allowed")


def looks_like_path(value: str) -> bool:
    """Whether a value could name a host file (absolute, home-relative or climbing out)."""
    text = value.strip()
    return text.startswith(("/", "~", "./", "file:")) or "../" in text or text == ".."


def check_values(element: Element, spec: Rule, where: str) -> None:
    """No attribute or text names a host file, except where ``spec`` checks the path itself."""
    for name, value in element.attrib.items():
        if name in spec.paths:
            continue
        if name in HOST_FILE_ATTRIBUTES and isinstance(spec.attrs, _Free):
            raise refuse(where, f"attribute '{name}' names a host file or device, which is not allowed here")
        if looks_like_path(value):
            raise refuse(where, f"attribute {name}='{value}' names a host path, which is not allowed")
    text = (element.text or "").strip()
    if text and TEXT not in spec.paths:
        if not spec.text and not isinstance(spec.children, _Free):
            raise refuse(where, f"<{element.tag}> takes no text")
        if looks_like_path(text):
            raise refuse(where, f"'{text}' names a host path, which is not allowed here")


# -- value checks used by several rules -----------------------------------------------------


def one_of(
    element: Element, attribute: str, allowed: tuple[str, ...], where: str, *, default: str = ""
) -> str:
    """The attribute's value, which must be one of ``allowed`` (``default`` when absent)."""
    value = element.get(attribute, default)
    if value not in allowed:
        shown = ", ".join(f"'{choice}'" for choice in allowed if choice)
        raise refuse(where, f"{attribute}='{value}' is not allowed (allowed: {shown})")
    return value


def ip_address(value: str, where: str, what: str) -> str:
    """``value`` if it is an IP address; DomainXMLError otherwise."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise refuse(where, f"{what} '{value}' is not an IP address") from None
    return value


def whole_number(value: str, where: str, what: str, low: int, high: int) -> int:
    """``value`` as a whole number from ``low`` to ``high``; DomainXMLError otherwise."""
    text = value.strip()
    if not re.fullmatch(r"-?\d{1,7}", text) or not low <= int(text) <= high:
        raise refuse(where, f"{what} must be a whole number from {low} to {high}, not '{value}'")
    return int(text)


def canonical(element: Element) -> str:
    """One element's XML in a form that compares equal when only formatting differs."""
    copy = etree.fromstring(etree.tostring(element, with_tail=False))
    for node in copy.iter():
        if isinstance(node.tag, str):
            if node.text is not None and not node.text.strip():
                node.text = None
            node.tail = None
    return etree.tostring(copy, method="c14n").decode()


def admin_only(element: Element, policy: XmlPolicy, where: str, what: str) -> None:
    """Refuse ``element`` unless the caller is an admin or it was already in the VM's XML."""
    if policy.admin or canonical(element) in policy.kept:
        return
    raise refuse(where, f"{what} needs an admin key")
