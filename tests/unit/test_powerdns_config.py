"""pdns.conf as PVC writes it: checked values, no way out to the world, no second line smuggled in."""

from __future__ import annotations

import dataclasses

import pytest

from pvc.net.powerdns import PowerDnsConfig, PowerDnsError, write_config


def _config(**changes) -> PowerDnsConfig:
    base = {
        "local_addresses": ("10.0.0.254", "2001:db8::254"),
        "db_host": "127.0.0.1",
        "db_port": 5432,
        "socket_dir": "/run/pvc/pdns",
    }
    return PowerDnsConfig(**{**base, **changes})


def _settings(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs)
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), "a key written twice"
    return dict(pairs)


def test_rendered_config_never_calls_out_and_serves_rows_at_once() -> None:
    text = _config().render()
    assert "security-poll-suffix=" in text.splitlines()
    settings = _settings(text)
    assert settings["security-poll-suffix"] == ""
    for cache in ("cache-ttl", "negquery-cache-ttl", "query-cache-ttl", "zone-cache-refresh-interval"):
        assert settings[cache] == "0"
    for off in (
        "webserver",
        "api",
        "primary",
        "secondary",
        "dnsupdate",
        "expand-alias",
        "daemon",
        "guardian",
    ):
        assert settings[off] == "no"
    assert settings["disable-syslog"] == "yes"
    assert not any(key.startswith(("recursor", "forward")) for key in settings)
    assert settings["allow-axfr-ips"] == "127.0.0.0/8,::1/128"


def test_rendered_config_points_at_the_database_and_the_given_addresses() -> None:
    settings = _settings(
        _config(local_port=15353, db_name="dns", db_user="pdns", db_password="s3cret").render()
    )
    assert settings["launch"] == "gpgsql"
    assert settings["gpgsql-host"] == "127.0.0.1" and settings["gpgsql-port"] == "5432"
    assert settings["gpgsql-dbname"] == "dns" and settings["gpgsql-user"] == "pdns"
    assert settings["gpgsql-password"] == "s3cret"
    assert settings["local-address"] == "10.0.0.254,2001:db8::254"
    assert settings["local-port"] == "15353"
    assert settings["socket-dir"] == "/run/pvc/pdns"


def test_database_socket_directory_is_accepted_as_host() -> None:
    assert _settings(_config(db_host="/run/postgresql").render())["gpgsql-host"] == "/run/postgresql"


@pytest.mark.parametrize(
    "changes",
    [
        {"local_addresses": ("127.0.0.1\nlaunch=bind",)},
        {"local_addresses": ()},
        {"local_addresses": "127.0.0.1"},
        {"db_host": "127.0.0.1\nsecurity-poll-suffix=secpoll.powerdns.com."},
        {"db_host": "db.example"},
        {"socket_dir": "/run/pdns\nwebserver=yes"},
        {"socket_dir": "relative/dir"},
        {"socket_dir": "/run/pdns #x"},
        {"db_name": "pdns\napi=yes"},
        {"db_user": "pdns user"},
        {"db_password": "pw\nwebserver=yes"},
        {"db_password": "pw with space"},
        {"axfr_from": ("10.0.0.0/8\nallow-dnsupdate-from=0.0.0.0/0",)},
        {"axfr_from": "127.0.0.1"},
        {"local_port": 0},
        {"local_port": 70000},
        {"local_port": True},
        {"db_port": "5432"},
        {"loglevel": 12},
    ],
)
def test_invalid_values_are_refused(changes: dict) -> None:
    with pytest.raises(PowerDnsError):
        _config(**changes)


def test_render_refuses_a_line_break_that_got_past_the_checks() -> None:
    config = _config()
    object.__setattr__(config, "db_name", "pdns\nwebserver=yes")  # as if a check were missing
    with pytest.raises(PowerDnsError, match="line break"):
        config.render()


def test_probe_address_is_loopback_for_a_wildcard() -> None:
    assert _config().probe_address == "10.0.0.254"
    assert _config(local_addresses=("0.0.0.0",)).probe_address == "127.0.0.1"
    assert _config(local_addresses=("::",)).probe_address == "::1"


def test_write_config_replaces_the_file(tmp_path) -> None:
    path = write_config(tmp_path / "pdns", _config())
    assert path.read_text() == _config().render()
    assert path.stat().st_mode & 0o777 == 0o640
    write_config(tmp_path / "pdns", dataclasses.replace(_config(), local_port=5300))
    assert _settings(path.read_text())["local-port"] == "5300"
    assert [p.name for p in (tmp_path / "pdns").iterdir()] == ["pdns.conf"]
