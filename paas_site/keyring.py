"""Named secret keys for HMAC signatures, written ``id:secret,id:secret``: the first signs, all verify.

Rotation mirrors ``SLIPWAY_ENCRYPTION_KEYS``: put a new key first, keep the old
ones as long as anything signed with them must still verify. A signature
records its key id, so a verifier knows which key to use and can say plainly
when it does not hold it. Pure: used by the settings (to refuse a malformed
value at start-up) and by the audit chain; an error names the key id, never
the secret.
"""
import re
from dataclasses import dataclass

KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")
MIN_SECRET_LENGTH = 32


class KeyringError(ValueError):
    """A malformed key list; the message names the variable and the key id, never a secret."""


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (id, secret); the first signs

    @property
    def signing(self) -> tuple[str, bytes]:
        return self.keys[0]

    def secret(self, key_id: str) -> bytes | None:
        return dict(self.keys).get(key_id)

    @property
    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]


def keyring_parse(entries: list[str] | tuple[str, ...], *, variable: str) -> Keyring:
    """``["k2:secret", "k1:older-secret"]`` → a :class:`Keyring`; :class:`KeyringError` names what is wrong."""
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        key_id, sep, secret = entry.strip().partition(":")
        if not sep or not KEY_ID.fullmatch(key_id):
            raise KeyringError(
                f"{variable}: entry {position} must be written id:secret, the id 1-32 letters, digits, '.', '_' or '-'.")
        if len(secret) < MIN_SECRET_LENGTH:
            raise KeyringError(f"{variable}: the secret of key {key_id!r} is shorter than {MIN_SECRET_LENGTH} characters.")
        if any(key_id == known for known, _ in keys):
            raise KeyringError(f"{variable}: key id {key_id!r} appears twice.")
        keys.append((key_id, secret.encode()))
    if not keys:
        raise KeyringError(f"{variable} holds no key.")
    return Keyring(tuple(keys))
