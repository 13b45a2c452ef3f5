"""`pvc cluster backup` and `restore` against the real API, whose backup body is a JSON string."""

from __future__ import annotations

import json

from tests.api.test_cli_live import live  # noqa: F401


def test_backup_decodes_the_v1_body_and_restore_reads_its_file(live, tmp_path):  # noqa: F811
    pvc, context = live
    store = context.cluster.store
    store.set("/config/cluster_name", "original")
    shown = json.loads(pvc("-q", "cluster", "backup"))
    assert isinstance(shown, dict) and shown["/config/cluster_name"] == "original"
    target = tmp_path / "backup.json"
    assert pvc("-q", "cluster", "backup", "-f", str(target)) == ""
    written = json.loads(target.read_text())
    assert isinstance(written, dict) and written["/config/cluster_name"] == "original"

    store.set("/config/cluster_name", "changed")
    pvc("-q", "cluster", "restore", "-f", str(target), "-y")
    assert store.get_text("/config/cluster_name") == "original"

    # a file holding the raw body (a JSON string of the dump) restores too
    raw = tmp_path / "raw.json"
    written["/config/cluster_name"] = "from the raw body"
    raw.write_text(json.dumps(json.dumps(written)))
    pvc("-q", "cluster", "restore", "-f", str(raw), "-y")
    assert store.get_text("/config/cluster_name") == "from the raw body"

    broken = tmp_path / "list.json"
    broken.write_text(json.dumps(json.dumps(["not", "a", "dump"])))
    assert "is not a JSON cluster backup" in pvc("cluster", "restore", "-f", str(broken), "-y", expect=1)
