"""Export directories and manifests: where exports may be, and what a manifest may say."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from pvc.cluster.vm.snapshot_files import (
    ExportedFile,
    ExportError,
    Manifest,
    allowed_directory,
    chain,
    no_links_below,
    verify_files,
    write_manifest,
)


def manifest(snapshot: str = "s1", parent: str | None = None, **changes) -> Manifest:
    kind = "incremental" if parent else "full"
    suffix = "diff" if parent else "img"
    files = [ExportedFile("vms", "web_sda", f"vms.web_sda.{suffix}", 1024, 3, "0" * 64)]
    base = Manifest(kind, "web", "u-1", snapshot, parent, 1.0, 2.0, "stopped", {}, "<domain/>", files)
    return Manifest.from_json(json.dumps({**asdict(base), **changes}), "test")


def test_paths_must_be_under_a_configured_backup_path(tmp_path):
    root = tmp_path / "backups"
    (root / "inner").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    assert allowed_directory(str(root / "inner"), [str(root)]) == root / "inner"
    for path, why in [
        (str(tmp_path / "elsewhere"), "not under a backup path"),
        (str(root / ".." / "elsewhere"), "not under a backup path"),
        (str(root / "escape"), "not under a backup path"),  # a link is followed, then refused
        ("relative/path", "must be absolute"),
        (str(root / "missing"), "is not a directory"),
    ]:
        with pytest.raises(ExportError, match=why):
            allowed_directory(path, [str(root)])
    with pytest.raises(ExportError, match="no backup paths are configured"):
        allowed_directory(str(root), [])


def test_links_below_the_root_are_never_followed(tmp_path):
    root = tmp_path / "backups"
    (root / "web").mkdir(parents=True)
    (root / "db").symlink_to("/etc")
    assert no_links_below(root, root / "web" / "s1") == root / "web" / "s1"
    with pytest.raises(ExportError, match="is a symbolic link"):
        no_links_below(root, root / "db" / "s1")


def test_a_manifest_names_only_plain_names_and_its_own_files():
    assert manifest().files[0].file == "vms.web_sda.img"
    assert manifest("s2", "s1").parent == "s1"
    with pytest.raises(ExportError, match="is not a snapshot name"):
        manifest("s2", "../../etc")
    with pytest.raises(ExportError, match="not a PVC export manifest"):
        Manifest.from_json("{}", "test")
    bad_file = {
        "pool": "vms",
        "volume": "web_sda",
        "file": "../../etc/shadow",
        "volume_size": 1,
        "file_size": 1,
    }
    with pytest.raises(ExportError, match="is not the one of vms/web_sda"):
        manifest(files=[{**bad_file, "sha256": "0"}])
    with pytest.raises(ExportError):
        manifest(files=[{**bad_file, "volume": "a/b", "file": "vms.a/b.img", "sha256": "0"}])
    with pytest.raises(ExportError, match="names its parent"):
        manifest(type="incremental")


def test_a_chain_follows_parents_to_a_full_export_and_checks_files(tmp_path):
    root = tmp_path
    for snap, parent in (("s1", None), ("s2", "s1")):
        directory = root / "web" / snap
        directory.mkdir(parents=True)
        found = manifest(snap, parent)
        (directory / found.files[0].file).write_bytes(b"abc")
        write_manifest(directory, found)
    assert [m.snapshot for _, m in chain(root, "web", "s2")] == ["s1", "s2"]
    with pytest.raises(ExportError, match="does not match its checksum"):
        verify_files(root / "web" / "s1", manifest())
    (root / "web" / "s1" / "manifest.json").rename(root / "web" / "s1" / "gone.json")
    with pytest.raises(ExportError, match="no complete export"):
        chain(root, "web", "s2")
