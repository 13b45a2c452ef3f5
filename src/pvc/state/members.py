"""Whether each member of the ZooKeeper ensemble answers, through its four-letter words.

A client session only tells whether *some* member answers; the members themselves are
asked directly on their client port: ``ruok`` (a running server answers ``imok``) and,
if the member's ``4lw.commands.whitelist`` does not allow ``ruok``, ``srvr``. Every probe
has a short timeout, so a member that is cut off costs at most about a second.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

#: Seconds a probe waits to connect and for each part of the reply.
PROBE_TIMEOUT = 1.0
#: Most bytes of a reply read (``srvr`` answers a few hundred).
MAX_REPLY = 65536
NOT_WHITELISTED = "not in the whitelist"


def ask(address: str, port: int, word: str, timeout: float = PROBE_TIMEOUT) -> tuple[str | None, str]:
    """Send a four-letter word: ``(reply, "")``, or ``(None, why there is none)``."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(word.encode())
            chunks, size = [], 0
            while size < MAX_REPLY:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks).decode(errors="replace"), ""
    except TimeoutError:
        return None, f"no answer from {address}:{port} within {timeout:g} s"
    except ConnectionRefusedError:
        return None, f"connection to {address}:{port} refused"
    except OSError as error:
        return None, f"{address}:{port}: {error.strerror or error}"


def four_letter(address: str, port: int, word: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Send a four-letter word; the reply, or None if the server did not answer in time."""
    return ask(address, port, word, timeout)[0]


def split_host(host: str, default_port: int = 2181) -> tuple[str, int]:
    """``("address", port)`` of a ``host[:port]`` entry of ``zookeeper.hosts``."""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name.strip("[]"), int(port)
    return host, default_port


@dataclass(frozen=True)
class MemberHealth:
    """One member's answer: ``answering`` True, False, or None when it answered but allows
    neither ``ruok`` nor ``srvr`` (it cannot be checked); ``detail`` says what was seen."""

    host: str
    answering: bool | None
    detail: str


def probe(host: str, timeout: float = PROBE_TIMEOUT) -> MemberHealth:
    """Ask the member at ``host`` (``address[:port]``) whether it runs."""
    address, port = split_host(host)
    reply, why = ask(address, port, "ruok", timeout)
    if reply is None:
        return MemberHealth(host, False, why)
    if reply.strip() == "imok":
        return MemberHealth(host, True, "imok")
    if NOT_WHITELISTED in reply:
        reply, why = ask(address, port, "srvr", timeout)
        if reply is None:
            return MemberHealth(host, False, why)
        if "Mode:" in reply or "not currently serving" in reply:
            return MemberHealth(host, True, "answers srvr")
        if NOT_WHITELISTED in reply:
            return MemberHealth(host, None, "allows neither ruok nor srvr (4lw.commands.whitelist)")
    return MemberHealth(host, False, f"unexpected answer {reply.strip()[:60]!r}")
