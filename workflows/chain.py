"""The audit chain's cryptography: HMAC-SHA256 links and signed checkpoints, under keys outside the database.

An event's link is HMAC-SHA256(key, key id, previous link, canonical JSON) under
``SLIPWAY_AUDIT_KEYS`` (the first key signs, every key verifies; the event
records its key id). Whoever can write the database but does not hold a key
cannot recompute a link, so a rewritten event stays visible however many later
links are rewritten with it. A checkpoint (the newest event's id and link, the
time, the key id) is signed the same way and kept outside the database, so a
removed tail or a rewound chain head is visible too. Pure: no database, no I/O.
"""
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from paas_site.keyring import Keyring, KeyringError, keyring_parse

GENESIS_HASH = "0" * 64
CHECKPOINT_VERSION = 1


class UnknownKey(Exception):
    """Something is signed under a key id that ``SLIPWAY_AUDIT_KEYS`` does not hold."""

    def __init__(self, key_id: str):
        super().__init__(f"key id {key_id!r} is not in SLIPWAY_AUDIT_KEYS")
        self.key_id = key_id


@lru_cache(maxsize=4)
def _keyring(entries: tuple[str, ...]) -> Keyring:
    try:
        return keyring_parse(entries, variable="SLIPWAY_AUDIT_KEYS")
    except KeyringError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def keyring() -> Keyring:
    return _keyring(tuple(settings.SLIPWAY_AUDIT_KEYS))


def signing_key_id() -> str:
    return keyring().signing[0]


def _secret(key_id: str) -> bytes:
    secret = keyring().secret(key_id)
    if secret is None:
        raise UnknownKey(key_id)
    return secret


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link_body(prev_hash: str, canonical: dict[str, Any], key_id: str) -> bytes:
    return key_id.encode() + b"\n" + prev_hash.encode() + canonical_json(canonical)


def link_hash(prev_hash: str, canonical: dict[str, Any], key_id: str) -> str:
    """The event's link: HMAC-SHA256 under ``key_id`` over the key id, the previous link and the content."""
    return hmac.digest(_secret(key_id), link_body(prev_hash, canonical, key_id), "sha256").hex()


def link_verifier():
    """A fast ``(prev_hash, canonical, key_id, link) -> bool`` for verifying many events; raises UnknownKey."""
    secrets = dict(keyring().keys)
    digest, compare, dumps = hmac.digest, hmac.compare_digest, canonical_json

    def verify(prev_hash: str, canonical: dict[str, Any], key_id: str, link: str) -> bool:
        secret = secrets.get(key_id)
        if secret is None:
            raise UnknownKey(key_id)
        body = key_id.encode() + b"\n" + prev_hash.encode() + dumps(canonical)
        return compare(digest(secret, body, "sha256").hex(), link)

    return verify


# -- checkpoints --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """The chain head at a moment: the newest event's id and link, signed with ``key``."""

    event_id: int
    hash: str
    event_key: str  # the key id of that event's link ("" while the chain is empty)
    written_at: str  # ISO 8601, UTC
    key: str
    signature: str
    v: int = CHECKPOINT_VERSION

    def to_json(self) -> str:
        return canonical_json(asdict(self)).decode()


@dataclass(frozen=True)
class CheckpointRecord:
    """One record read from a checkpoint store: where it was, and the parsed JSON (or why it could not be)."""

    where: str
    record: Any = None
    error: str = ""


class CheckpointInvalid(Exception):
    """A record that is not a checkpoint this platform signed: malformed, forged or edited."""


def _checkpoint_body(event_id: int, link: str, event_key: str, written_at: str, key: str, v: int) -> bytes:
    return canonical_json({"v": v, "event_id": event_id, "hash": link, "event_key": event_key,
                           "written_at": written_at, "key": key})


def checkpoint_sign(*, event_id: int, link: str, event_key: str, written_at: str) -> Checkpoint:
    key = signing_key_id()
    body = _checkpoint_body(event_id, link, event_key, written_at, key, CHECKPOINT_VERSION)
    return Checkpoint(event_id=event_id, hash=link, event_key=event_key, written_at=written_at, key=key,
                      signature=hmac.digest(_secret(key), body, "sha256").hex())


FIELD_TYPES = {"v": int, "event_id": int, "hash": str, "event_key": str, "written_at": str, "key": str,
               "signature": str}


def checkpoint_verify(record: Any) -> Checkpoint:
    """A parsed JSON record → the :class:`Checkpoint` it is; :class:`CheckpointInvalid` or UnknownKey otherwise."""
    if not isinstance(record, dict):
        raise CheckpointInvalid("it is not a JSON object")
    missing = sorted(set(FIELD_TYPES) - set(record))
    if missing:
        raise CheckpointInvalid(f"it lacks {', '.join(missing)}")
    wrong = sorted(name for name, kind in FIELD_TYPES.items()
                   if not isinstance(record[name], kind) or isinstance(record[name], bool))
    if wrong:
        raise CheckpointInvalid(f"{', '.join(wrong)} has the wrong type")
    if record["v"] != CHECKPOINT_VERSION:
        raise CheckpointInvalid(f"version {record['v']} is not {CHECKPOINT_VERSION}")
    checkpoint = Checkpoint(**{name: record[name] for name in FIELD_TYPES})
    body = _checkpoint_body(checkpoint.event_id, checkpoint.hash, checkpoint.event_key, checkpoint.written_at,
                            checkpoint.key, checkpoint.v)
    expected = hmac.digest(_secret(checkpoint.key), body, "sha256").hex()
    if not hmac.compare_digest(expected, checkpoint.signature):
        raise CheckpointInvalid("its signature does not match its content: it was forged or edited")
    return checkpoint


def legacy_hash(prev_hash: str, canonical: dict[str, Any]) -> str:
    """The plain SHA-256 link of events written before the HMAC chain (migration 0006 re-anchors them)."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(canonical)).hexdigest()
