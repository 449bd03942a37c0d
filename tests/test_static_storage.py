"""The production static storage remembers each file's hashed URL, and gives the manifest's answer."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from core.storage import RememberingManifestStaticFilesStorage


@pytest.fixture
def storage(tmp_path):
    (tmp_path / "portal").mkdir()
    (tmp_path / "portal" / "app.css").write_text("body{}")
    (tmp_path / "staticfiles.json").write_text(json.dumps(
        {"paths": {"portal/app.css": "portal/app.0123456789ab.css"}, "version": "1.1", "hash": "x"}))
    return RememberingManifestStaticFilesStorage(location=str(tmp_path), base_url="/static/")


@override_settings(DEBUG=False)
def test_the_hashed_url_is_the_manifests_and_is_remembered(storage):
    assert storage.url("portal/app.css") == "/static/portal/app.0123456789ab.css"
    assert storage._remembered_urls == {"portal/app.css": "/static/portal/app.0123456789ab.css"}
    storage.hashed_files["portal/app.css"] = "portal/app.changed.css"
    # The manifest does not change while a process runs: the remembered answer stands.
    assert storage.url("portal/app.css") == "/static/portal/app.0123456789ab.css"


@override_settings(DEBUG=False)
def test_a_file_missing_from_the_manifest_still_fails(storage):
    with pytest.raises(ValueError):
        storage.url("portal/missing.css")
    assert storage._remembered_urls == {}


@override_settings(DEBUG=True)
def test_with_debug_on_nothing_is_remembered(storage):
    assert storage.url("portal/app.css") == "/static/portal/app.css"
    assert storage._remembered_urls == {}
