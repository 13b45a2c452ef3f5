"""The client's connection store: ``pvc.json`` plus our ``default`` file, and :class:`Connection`.

Layout of the store directory (``$PVC_CLIENT_DIR``, else ``$HOME/.config/pvc``, else ``/tmp/pvc``):

``pvc.json``
    A JSON object, written with sorted keys and an indent of 4 (the same form PVC v1 clients use).
    Each key is a connection name and each value is either a *static* entry
    ``{"description", "host", "port", "scheme", "api_key"}`` or a *cfgfile* entry
    ``{"cfgfile": "/etc/pvc/pvc.conf"}`` whose address, port, scheme and key are read from a node's
    daemon configuration. A new file holds only ``{"local": {"cfgfile": "/etc/pvc/pvc.conf"}}`` and is
    created with mode ``$PVC_CLIENT_DB_PERMS`` (octal, default ``600``).

``default`` (our addition)
    A plain-text file naming the connection to use when neither ``-c/--connection`` nor
    ``$PVC_CONNECTION`` is given. Without it the client falls back to the built-in ``local``
    connection, which reads ``/etc/pvc/pvc.conf`` directly, as PVC does.

Every failure raises :class:`~pvc.client.errors.ConnectionStoreError` with a message fit to show
the user.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pvc.client.errors import ConnectionStoreError

API_PREFIX = "/api/v1"
DEFAULT_PORT = 7370
STORE_FILENAME = "pvc.json"
DEFAULT_FILENAME = "default"
LOCAL_NAME = "local"
# The daemon configuration read by the ``local`` connection (a module attribute so tests can point it
# elsewhere).
LOCAL_CFGFILE = "/etc/pvc/pvc.conf"
DEFAULT_PERMS = "600"


@dataclass(frozen=True)
class Connection:
    """A resolved API endpoint: where to send requests and with which key."""

    name: str
    host: str
    port: int
    scheme: str = "http"
    api_key: str | None = None
    description: str = ""
    cfgfile: str | None = None

    @property
    def api_host(self) -> str:
        """``host:port`` as shown in the banner."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``scheme://host:port/api/v1``: the prefix of every API URL."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.scheme}://{host}:{self.port}{API_PREFIX}"

    @property
    def verify_ssl(self) -> bool:
        """Whether TLS certificates are checked: never for ``local``, else unless disabled by env."""
        if self.name == LOCAL_NAME:
            return False
        return os.environ.get("PVC_CLIENT_VERIFY_SSL", "True") == "True"


def store_directory(directory: str | os.PathLike[str] | None = None) -> Path:
    """The store directory (created if missing): the argument, ``$PVC_CLIENT_DIR``, ``~/.config/pvc``."""
    if directory is not None:
        path = Path(directory)
    elif os.environ.get("PVC_CLIENT_DIR"):
        path = Path(os.environ["PVC_CLIENT_DIR"])
    elif os.environ.get("HOME"):
        path = Path(os.environ["HOME"]) / ".config" / "pvc"
    else:
        path = Path("/tmp/pvc")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConnectionStoreError(
            f"Cannot create the connection store directory {path}: {exc.strerror}"
        ) from exc
    return path


def store_file(directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``pvc.json`` in the store directory."""
    return store_directory(directory) / STORE_FILENAME


def _file_mode() -> int:
    raw = os.environ.get("PVC_CLIENT_DB_PERMS", DEFAULT_PERMS)
    try:
        return int(raw, 8)
    except ValueError as exc:
        raise ConnectionStoreError(f"PVC_CLIENT_DB_PERMS must be an octal file mode, not {raw!r}") from exc


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically, keeping its mode (new files get ``$PVC_CLIENT_DB_PERMS``)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = _file_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConnectionStoreError(f"Cannot write {path}: {exc.strerror}") from exc


def save_connections(
    data: dict[str, dict[str, Any]], directory: str | os.PathLike[str] | None = None
) -> Path:
    """Write the whole store (sorted keys, indent 4) and return the file's path."""
    path = store_file(directory)
    _write_text(path, json.dumps(data, sort_keys=True, indent=4) + "\n")
    return path


def load_connections(directory: str | os.PathLike[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read the store, creating it on first use; ``local`` is forced to its cfgfile form if that exists."""
    path = store_file(directory)
    if not path.exists():
        save_connections({LOCAL_NAME: {"cfgfile": LOCAL_CFGFILE}}, directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectionStoreError(f"Cannot read the connection store {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConnectionStoreError(f"The connection store {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConnectionStoreError(f"The connection store {path} does not hold a JSON object")
    if Path(LOCAL_CFGFILE).exists():
        data[LOCAL_NAME] = {"cfgfile": LOCAL_CFGFILE}
    return data


def _upstream_address(config: dict[str, Any]) -> str:
    """The address pvcapid binds by default: the upstream floating address, else the node's."""
    upstream = config["networks"]["upstream"]
    return str(upstream.get("floating_address") or upstream["address"]).split("/")[0]


def read_cfgfile(name: str, cfgfile: str) -> Connection:
    """Build a connection from a PVC daemon configuration file (its ``api`` section)."""
    try:
        with open(cfgfile, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ConnectionStoreError(f'Connection "{name}": cannot read {cfgfile}: {exc.strerror}') from exc
    except yaml.YAMLError as exc:
        raise ConnectionStoreError(f'Connection "{name}": {cfgfile} is not valid YAML') from exc
    try:
        api = config.get("api") or {}
        listen = api.get("listen") or {}
        address = listen.get("address") or _upstream_address(config)
        port = int(listen.get("port", DEFAULT_PORT))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConnectionStoreError(
            f'Connection "{name}": {cfgfile} names no API address '
            "(api.listen.address or networks.upstream) or a bad api.listen.port"
        ) from exc
    ssl = bool((api.get("ssl") or {}).get("enabled", False))
    auth = api.get("authentication") or {}
    api_key = None
    if auth.get("enabled", True) is not False and auth.get("source", "token") == "token":
        tokens = api.get("token") or []
        if tokens and isinstance(tokens[0], dict) and tokens[0].get("token"):
            api_key = str(tokens[0]["token"])
    if address == "0.0.0.0":
        address = "127.0.0.1"
    return Connection(
        name=name,
        host=address,
        port=port,
        scheme="https" if ssl else "http",
        api_key=api_key,
        description=cfgfile,
        cfgfile=cfgfile,
    )


def entry_to_connection(name: str, entry: dict[str, Any]) -> Connection:
    """Turn one store entry (static or cfgfile) into a :class:`Connection`."""
    if "cfgfile" in entry:
        return read_cfgfile(name, str(entry["cfgfile"]))
    try:
        return Connection(
            name=name,
            host=str(entry["host"]),
            port=int(entry.get("port", DEFAULT_PORT)),
            scheme=str(entry.get("scheme", "http")),
            api_key=entry.get("api_key") or None,
            description=str(entry.get("description", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConnectionStoreError(f'Connection "{name}" in the store is malformed') from exc


def default_file(directory: str | os.PathLike[str] | None = None) -> Path:
    """Path of our ``default`` file in the store directory."""
    return store_directory(directory) / DEFAULT_FILENAME


def get_default_connection(directory: str | os.PathLike[str] | None = None) -> str | None:
    """The connection named by the ``default`` file, or None when there is none."""
    path = default_file(directory)
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConnectionStoreError(f"Cannot read {path}: {exc.strerror}") from exc
    return name or None


def set_default_connection(name: str, directory: str | os.PathLike[str] | None = None) -> None:
    """Make ``name`` (which must be stored) the connection used when none is given."""
    if name not in load_connections(directory):
        raise ConnectionStoreError(f'No connection "{name}" in the store')
    _write_text(default_file(directory), name + "\n")


def clear_default_connection(directory: str | os.PathLike[str] | None = None) -> None:
    """Remove the ``default`` file, so the built-in ``local`` connection applies again."""
    path = default_file(directory)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ConnectionStoreError(f"Cannot remove {path}: {exc.strerror}") from exc


def register_connection(
    name: str,
    host: str,
    port: int = DEFAULT_PORT,
    scheme: str = "http",
    api_key: str | None = None,
    description: str = "",
    make_default: bool = False,
    directory: str | os.PathLike[str] | None = None,
) -> Path:
    """Add or replace a static connection in the store; optionally make it the default.

    This is what ``pvc connection add`` does; other tools (the lab) call it directly. No API call is
    made. Returns the path of the store file.
    """
    if not name or "/" in name:
        raise ConnectionStoreError(f"Invalid connection name {name!r}")
    if scheme not in ("http", "https"):
        raise ConnectionStoreError(f"Invalid scheme {scheme!r}: use http or https")
    data = load_connections(directory)
    data[name] = {
        "description": description,
        "host": host,
        "port": int(port),
        "scheme": scheme,
        "api_key": api_key,
    }
    path = save_connections(data, directory)
    if make_default:
        set_default_connection(name, directory)
    return path


def remove_connection(name: str, directory: str | os.PathLike[str] | None = None) -> None:
    """Delete a stored connection; if it was the default, the default file is removed too."""
    data = load_connections(directory)
    if name not in data:
        raise ConnectionStoreError(f'No connection "{name}" in the store')
    del data[name]
    save_connections(data, directory)
    if get_default_connection(directory) == name:
        clear_default_connection(directory)


def _stored(name: str, directory: str | os.PathLike[str] | None, missing: str) -> Connection:
    """Connection ``name`` from the store; ConnectionStoreError(``missing``) if it is not there."""
    data = load_connections(directory)
    if name not in data:
        raise ConnectionStoreError(missing)
    return entry_to_connection(name, data[name])


def resolve_connection(name: str | None, directory: str | os.PathLike[str] | None = None) -> Connection:
    """The connection to use: ``name`` from the store, else the default file's, else built-in ``local``."""
    if name:
        missing = f'Connection "{name}" is not in the store; add it with "pvc connection add"'
        return _stored(name, directory, missing)
    default = get_default_connection(directory)
    if default:
        missing = f'The default connection "{default}" (from {default_file(directory)}) is not in the store'
        return _stored(default, directory, missing)
    if not Path(LOCAL_CFGFILE).exists():
        raise ConnectionStoreError(
            "No connection given (-c/--connection or PVC_CONNECTION), no default connection set, "
            f"and no local configuration at {LOCAL_CFGFILE}"
        )
    return read_cfgfile(LOCAL_NAME, LOCAL_CFGFILE)
