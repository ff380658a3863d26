"""Personal data at rest: phone numbers encrypted (AES-256-GCM) with a keyed blind index.

A phone number is stored as three columns (see :class:`Sealed`):

* ``*_index`` — HMAC-SHA256 of the *normalised* number under the index key: equal numbers give
  equal indexes, so caller lookup and search are one indexed equality, while the table alone
  reveals nothing (no key, no dictionary attack over the 10^11 mobile numbers);
* ``*_enc`` — ``"<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>"``; the key id says which data key
  opens it, so keys can be rotated (``docs/privacy.md``);
* ``*_masked`` — what every screen shows (138****5678), kept so lists need no decryption.

Keys are 32 random bytes, base64, from the environment (``CALLCENTER_DATA_KEYS``,
``CALLCENTER_INDEX_KEYS``: comma-separated ``id:base64`` pairs, the first is current). Without
them, a single-process install keeps generated keys in ``CALLCENTER_KEY_FILE`` (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callcenter.privacy import mask_phone

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
# Associated data: a ciphertext sealed as a phone number cannot be replayed as another field.
_AAD = b"callcenter/phone/v1"


class KeySpecError(ValueError):
    """A key spec that cannot be used (wrong length, bad base64, duplicate id)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    index: str
    enc: str
    masked: str


def parse_keys(spec: str, what: str) -> tuple[tuple[str, bytes], ...]:
    """``"k2:BASE64,k1:BASE64"`` → ((id, key), …), current first. Raises KeySpecError naming ``what``."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise KeySpecError(f"{what}: each key is id:base64 with an id of letters, digits, - or _")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise KeySpecError(f"{what}: key {kid!r} is not base64") from None
        if len(key) != 32:
            raise KeySpecError(f"{what}: key {kid!r} must be 32 bytes, got {len(key)}")
        if any(kid == k for k, _ in keys):
            raise KeySpecError(f"{what}: key id {kid!r} appears twice")
        keys.append((kid, key))
    if not keys:
        raise KeySpecError(f"{what}: no key given")
    return tuple(keys)


def new_key_spec(kid: str = "k1") -> str:
    """A fresh ``id:base64`` key (``callcenter keys new``)."""
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


class PhoneVault:
    """Seal, open and index phone numbers. Thread-safe and cheap: build one per process."""

    def __init__(self, data_keys: tuple[tuple[str, bytes], ...],
                 index_keys: tuple[tuple[str, bytes], ...]) -> None:
        self._current_id, current = data_keys[0]
        self._aead = {kid: AESGCM(key) for kid, key in data_keys}
        self._current = self._aead[self._current_id]
        self._index_keys = tuple(key for _, key in index_keys)

    @classmethod
    def from_specs(cls, data_spec: str, index_spec: str) -> PhoneVault:
        return cls(parse_keys(data_spec, "CALLCENTER_DATA_KEYS"),
                   parse_keys(index_spec, "CALLCENTER_INDEX_KEYS"))

    @property
    def current_key_id(self) -> str:
        return self._current_id

    def index(self, number: str) -> str:
        """The blind index of a normalised number under the current index key (64 hex)."""
        return hmac.new(self._index_keys[0], number.encode(), hashlib.sha256).hexdigest()

    def indexes(self, number: str) -> tuple[str, ...]:
        """The number's index under every index key, current first: lookups during an index-key
        rotation match rows not yet re-indexed."""
        return tuple(hmac.new(k, number.encode(), hashlib.sha256).hexdigest() for k in self._index_keys)

    def encrypt(self, value: str) -> str:
        nonce = os.urandom(12)
        ct = self._current.encrypt(nonce, value.encode(), _AAD)
        return f"{self._current_id}:{base64.urlsafe_b64encode(nonce + ct).decode().rstrip('=')}"

    def decrypt(self, token: str) -> str:
        """The plaintext; ValueError if the key id is unknown or the token was tampered with."""
        kid, _, body = token.partition(":")
        aead = self._aead.get(kid)
        if aead is None:
            raise ValueError(f"no data key {kid!r} (was it removed before re-encryption finished?)")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            return aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not authenticate") from None

    def needs_reencryption(self, token: str) -> bool:
        return not token.startswith(self._current_id + ":")

    def seal(self, number: str) -> Sealed:
        """Index, ciphertext and masked form of a normalised number ("" → all empty)."""
        if not number:
            return Sealed("", "", "")
        return Sealed(self.index(number), self.encrypt(number), mask_phone(number))


def load_or_create_key_file(path: Path) -> tuple[str, str]:
    """(data spec, index spec) from ``path``, creating it with fresh keys (mode 0600) if absent.

    For a single-process install only: several instances must share keys through the
    environment."""
    if path.exists():
        try:
            d = json.loads(path.read_text())
            return str(d["data_keys"]), str(d["index_keys"])
        except (ValueError, KeyError, TypeError) as e:
            raise KeySpecError(f"key file {path} is unreadable: {type(e).__name__}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    data, index = new_key_spec("k1"), new_key_spec("i1")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"data_keys": data, "index_keys": index}, f)
    return data, index
