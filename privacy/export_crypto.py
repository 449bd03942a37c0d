"""Export files encrypted at rest: AES-256-GCM in 1 MiB chunks under a per-request data key.

Format: ``CLPX1`` | data key id (16 bytes) | nonce prefix (8 bytes), then chunks of
``length (4 bytes) | ciphertext+tag``. Each chunk's nonce is the prefix plus its 4-byte counter, and
its associated data binds the header, the counter and whether it is the last chunk, so chunks cannot
be reordered, dropped or the file truncated without decryption failing. Streaming both ways keeps
memory flat whatever the export's size. The key is the request's own subject key, so destroying it
(crypto-shredding the request record) also makes every copy of the export unreadable.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.crypto import DecryptionError, KeyScope, keyring

MAGIC = b"CLPX1"
CHUNK = 1024 * 1024
_HEADER = len(MAGIC) + 16 + 8


def _aad(header: bytes, counter: int, last: bool) -> bytes:
    return header + struct.pack(">I?", counter, last)


def encrypt_stream(source: BinaryIO, target: BinaryIO, *, scope: KeyScope) -> None:
    key_id, material = keyring.active_key(scope)
    cipher = AESGCM(material)
    header = MAGIC + key_id.bytes + os.urandom(8)
    target.write(header)
    counter = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        last = not following
        nonce = header[-8:] + struct.pack(">I", counter)
        sealed = cipher.encrypt(nonce, chunk, _aad(header, counter, last))
        target.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return
        chunk, counter = following, counter + 1


def decrypt_stream(source: BinaryIO) -> Iterator[bytes]:
    header = source.read(_HEADER)
    if len(header) != _HEADER or not header.startswith(MAGIC):
        raise DecryptionError("Not an encrypted export.")
    cipher = AESGCM(keyring.key(uuid.UUID(bytes=header[len(MAGIC):len(MAGIC) + 16])))
    counter = 0
    length = source.read(4)
    while length:
        if len(length) != 4:
            raise DecryptionError("Truncated export.")
        sealed = source.read(struct.unpack(">I", length)[0])
        length = source.read(4)
        last = not length
        try:
            yield cipher.decrypt(header[-8:] + struct.pack(">I", counter), sealed, _aad(header, counter, last))
        except InvalidTag as exc:
            raise DecryptionError("The export was altered, truncated or its key destroyed.") from exc
        counter += 1
    if counter == 0:
        raise DecryptionError("Truncated export.")
