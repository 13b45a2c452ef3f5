"""The interface reference the conformance tests read: a missing one fails them, it does not
quietly skip them (unless ``PVC_NO_REFERENCE=1`` says it is absent on purpose)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import NO_REFERENCE_VARIABLE, REFERENCE_DIR, reference_file


@pytest.mark.parametrize("name", ["pvc-api-v1.json", "pvc-cli-tree.json"])
def test_the_reference_is_where_the_suite_expects_it(name, monkeypatch):
    monkeypatch.delenv("PVC_REFERENCE_DIR", raising=False)
    monkeypatch.delenv(NO_REFERENCE_VARIABLE, raising=False)
    path = reference_file(name)
    assert path == REFERENCE_DIR / name
    assert json.loads(path.read_text())  # readable and not empty


def test_a_missing_reference_fails_the_test(tmp_path, monkeypatch):
    monkeypatch.setenv("PVC_REFERENCE_DIR", str(tmp_path))
    monkeypatch.delenv(NO_REFERENCE_VARIABLE, raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"pvc-api-v1\.json is missing"):
        reference_file("pvc-api-v1.json")


def test_an_intentionally_absent_reference_skips_saying_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PVC_REFERENCE_DIR", str(tmp_path))
    monkeypatch.setenv(NO_REFERENCE_VARIABLE, "1")
    with pytest.raises(pytest.skip.Exception, match="intended"):
        reference_file("pvc-api-v1.json")


def test_another_reference_directory_is_honoured(tmp_path, monkeypatch):
    (tmp_path / "pvc-api-v1.json").write_text("{}")
    monkeypatch.setenv("PVC_REFERENCE_DIR", str(tmp_path))
    assert reference_file("pvc-api-v1.json") == tmp_path / "pvc-api-v1.json"
