"""The production static files storage, with each file's URL remembered per process.

``{% static %}`` asks the manifest storage for a file's hashed URL on every use (a name lookup, quoting and
URL joining each time; four per page in the layout alone). The manifest is read once at start and does not
change while the process runs, so the answer for a name is remembered. With ``DEBUG`` on, Django serves
unhashed names and nothing is remembered.
"""

from __future__ import annotations

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage


class RememberingManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._remembered_urls: dict[str, str] = {}

    def url(self, name, force=False):
        if force or settings.DEBUG or not isinstance(name, str):
            return super().url(name, force)
        url = self._remembered_urls.get(name)
        if url is None:
            url = self._remembered_urls[name] = super().url(name)
        return url
