"""The pure parts of the schedules: their configuration, the rotation and retention of
autobackups, recipients and the report mailer (a stand-in sendmail script)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from pvc.cluster.schedules.autobackup import Entry, expired, next_is_full
from pvc.cluster.schedules.automirror import destination_of
from pvc.cluster.schedules.reports import parse_recipients, send_report
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm.mirror_send import allowed_remote
from pvc.config.backup import AutobackupSection, AutomirrorSection, BackupSection
from pvc.node.background import PassThread
from pvc.tasks import TaskError


def test_the_configuration_refuses_what_cannot_work():
    with pytest.raises(ValidationError, match=r"not under one of backup\.paths"):
        BackupSection.model_validate({"paths": ["/srv/b"], "autobackup": {"path": "/srv/bx/auto"}})
    with pytest.raises(ValidationError, match="default_destination 'x' is not in destinations"):
        AutomirrorSection.model_validate({"default_destination": "x"})
    for bad in ("ftp://h/api", "http://h/api?x=1", "not a url"):
        with pytest.raises(ValidationError):
            AutomirrorSection.model_validate({"destinations": {"d": {"uri": bad, "key_file": "/k"}}})
    with pytest.raises(ValidationError):
        AutobackupSection.model_validate({"report_to": ["a@b.c\nBcc: x@y.z"]})
    with pytest.raises(ValidationError):
        AutobackupSection.model_validate({"report_to": ["-oX@y.z"]})
    assert BackupSection.model_validate({"paths": ["/srv/b"], "autobackup": {"path": "/srv/b/auto"}})


def test_every_nth_backup_is_full_and_a_missing_parent_snapshot_forces_one():
    section = AutobackupSection(full_interval=3)
    history: list[Entry] = []
    kinds = []
    for number in range(7):
        full = next_is_full(history, section, force_full=False, parent_kept=bool(history))
        kinds.append("full" if full else "incremental")
        history.append(Entry(str(number), kinds[-1]))
    assert kinds == ["full", "incremental", "incremental"] * 2 + ["full"]
    assert next_is_full(history[:1], section, force_full=True, parent_kept=True)
    assert next_is_full(history[:1], section, force_full=False, parent_kept=False)
    assert next_is_full(history[:1], AutobackupSection(full_interval=1), force_full=False, parent_kept=True)


def test_retention_keeps_the_newest_fulls_with_what_builds_on_them():
    history = [
        Entry("1", "full"),
        Entry("2", "incremental", "1"),
        Entry("3", "full"),
        Entry("4", "incremental", "3"),
        Entry("5", "incremental", "3"),
        Entry("6", "full"),
    ]
    kept, removed = expired(history, 2)
    assert [e.datestring for e in kept] == ["3", "4", "5", "6"]
    assert [e.datestring for e in removed] == ["1", "2"]
    assert expired(history, 5) == (history, [])


def test_automirror_destinations_come_from_the_tag_or_the_default():
    settings = AutomirrorSection.model_validate(
        {
            "destinations": {"dr": {"uri": "https://dr:7370/api/v1", "key_file": "/k"}},
            "default_destination": "dr",
        }
    )
    assert destination_of(settings, "automirror")[0] == "dr"
    assert destination_of(settings, "automirror:dr")[0] == "dr"
    with pytest.raises(TaskError, match="'mars', which is not configured"):
        destination_of(settings, "automirror:mars")
    with pytest.raises(TaskError, match="no default_destination"):
        destination_of(AutomirrorSection(), "automirror")


def test_recipients_are_plain_addresses():
    assert parse_recipients(" a@b.c, d.e+f@g-h.example ,") == ["a@b.c", "d.e+f@g-h.example"]
    for bad in ("a@b.c\nBcc: x@y.z", "-oQ/tmp@x", "-oQ@x.y", "nobody", "a@b.c,<x@y.z>"):
        with pytest.raises(ValueError):
            parse_recipients(bad)
    with pytest.raises(ValueError, match="at most 32"):
        parse_recipients(",".join(f"u{i}@x.y" for i in range(33)))


def test_the_report_goes_to_sendmail_with_the_recipients_as_arguments(tmp_path):
    script = tmp_path / "sendmail"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\ncat > {tmp_path}/body\n')
    script.chmod(0o755)
    assert send_report(script, "pvc@x.y", ["a@b.c", "d@e.f"], "Autobackup: done", "line 1\nline 2\n") is None
    assert (tmp_path / "args").read_text().split("\n")[:-1] == ["-i", "-f", "pvc@x.y", "--", "a@b.c", "d@e.f"]
    body = (tmp_path / "body").read_text()
    assert "To: a@b.c, d@e.f" in body and "Subject: Autobackup: done" in body and "line 2" in body

    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'no route' >&2\nexit 75\n")
    failing.chmod(0o755)
    assert send_report(failing, "pvc@x.y", ["a@b.c"], "s", "b") == f"{failing} failed (75): no route\n"
    assert "could not be run" in send_report(tmp_path / "absent", "pvc@x.y", ["a@b.c"], "s", "b")


def test_a_pass_thread_starts_again_after_a_stop():
    """A primary phase's thread is stopped (at start-up, or when the role goes) and started
    again when the role comes back: it must run passes then."""
    passes = []
    thread = PassThread("test", lambda: passes.append(1), interval=60)
    thread.stop()  # as the start-up clean-up does, before any start
    thread.start()
    deadline = time.monotonic() + 5
    while not passes and time.monotonic() < deadline:
        time.sleep(0.02)
    thread.stop()
    assert passes


def test_sends_go_only_to_the_configured_apis(tmp_path):
    nothing = BackupSection()
    assert not nothing.allows_destination("https://dr.example.net:7370/api/v1")  # the default: none
    backup = BackupSection.model_validate(
        {
            "send_destinations": ["https://dr.example.net:7370/api/v1", "http://10.0.0.9"],
            "automirror": {
                "destinations": {"far": {"uri": "https://far.example.org/pvc/api/v1", "key_file": "/k"}}
            },
        }
    )
    for allowed in (
        "https://dr.example.net:7370/api/v1",
        "https://DR.example.net:7370/api/v1/",
        "http://10.0.0.9/api/v1",
        "http://10.0.0.9:80/anything",
        "https://far.example.org:443/pvc/api/v1",  # an automirror destination
    ):
        assert backup.allows_destination(allowed), allowed
    for refused in (
        "https://dr.example.net:7370/api/v10",  # not under the path
        "http://dr.example.net:7370/api/v1",  # another scheme
        "https://dr.example.net/api/v1",  # another port
        "http://10.0.0.9.evil.example/api/v1",
        "http://10.0.0.9:8080/api/v1",
        "https://user@dr.example.net:7370/api/v1",
        "http://[::1/api",
    ):
        assert not backup.allows_destination(refused), refused
    assert BackupSection(send_destinations=["*"]).allows_destination("http://anywhere:1/api/v1")
    for bad in ("dr.example.net", "ftp://h/api", "**"):
        with pytest.raises(ValidationError):
            BackupSection(send_destinations=[bad])


def test_a_node_sends_only_where_its_own_configuration_allows():
    """The task checks again on the node (its configuration, not the API's)."""
    ctx = SimpleNamespace(services=NodeServices(backup=BackupSection(send_destinations=["https://dr:7370"])))
    assert allowed_remote(ctx, "https://dr:7370/api/v1", "key", True).base == "https://dr:7370/api/v1"
    with pytest.raises(TaskError, match=r"not among this cluster's backup\.send_destinations"):
        allowed_remote(ctx, "https://elsewhere:7370/api/v1", "key", True)
    with pytest.raises(TaskError, match=r"backup\.send_destinations"):
        allowed_remote(SimpleNamespace(services=None), "https://dr:7370/api/v1", "key", True)
