"""Where audit checkpoints are kept, outside the database: an append-only file, plus optional copies.

``checkpoints.jsonl`` in the checkpoint directory is only ever opened with
``O_APPEND``: each checkpoint is one line, written by one ``write()`` under an
exclusive ``flock`` (concurrent writers never interleave) and ``fsync``-ed (the
directory too when the file is new), so nothing written is rewritten here.
Copies go to a webhook (the checkpoint as a POSTed JSON body) and to syslog
(one line, tagged ``slipway-audit-checkpoint:``); both can be read back by
``audit_verify --checkpoints``. An adapter: it never queries the database, and
raises ``TransientError``/``PermanentError`` for the copies it cannot deliver.
"""
import fcntl
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from paas_site.errors import PermanentError, TransientError

from .chain import Checkpoint, CheckpointRecord

FILE_NAME = "checkpoints.jsonl"
SYSLOG_TAG = "slipway-audit-checkpoint"
SYSLOG_PRIORITY = 10 * 8 + 6  # facility authpriv, severity info
TIMEOUT = 10
TAIL_BYTES = 64 * 1024  # the last line is far shorter


def checkpoint_append(*, directory: Path, checkpoint: Checkpoint) -> Path:
    """Append one checkpoint line to ``directory/checkpoints.jsonl`` and make it durable; returns the file."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / FILE_NAME
    line = (checkpoint.to_json() + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        created = os.fstat(descriptor).st_size == 0
        if os.write(descriptor, line) != len(line):
            raise OSError(f"{path}: short write of a checkpoint (disk full?)")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)  # releases the lock
    if created:
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)
    return path


def checkpoint_last(*, directory: Path) -> dict[str, Any] | None:
    """The newest record of the directory's file as parsed JSON, or None (no file, or not JSON)."""
    path = directory / FILE_NAME
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - TAIL_BYTES))
            lines = [line for line in file.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    try:
        record = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def checkpoints_read(path: Path) -> Iterator[CheckpointRecord]:
    """Every record of a checkpoint file (or of ``checkpoints.jsonl`` in a directory), in order.

    A line may carry a prefix before its JSON object (a syslog copy); blank lines are skipped; a line that
    is not a JSON object is yielded with its error, never dropped.
    """
    if path.is_dir():
        path = path / FILE_NAME
        if not path.exists():
            return
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            where = f"{path}:{number}"
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            start = text.find("{")
            if start < 0:
                yield CheckpointRecord(where=where, error="the line holds no JSON object")
                continue
            try:
                yield CheckpointRecord(where=where, record=json.loads(text[start:]))
            except ValueError as exc:
                yield CheckpointRecord(where=where, error=f"malformed JSON ({exc.msg} at column {exc.pos + start + 1})")


def checkpoint_post(*, url: str, secret: str, checkpoint: Checkpoint) -> int:
    """POST the checkpoint as JSON; with a secret, ``X-Slipway-Signature: sha256=<HMAC of the body>``."""
    from .services.notifications import SIGNATURE_HEADER, signature

    body = checkpoint.to_json().encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Slipway-Audit-Checkpoint/1"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]  # never a password in a message
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (operator-set URL)
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"the checkpoint webhook at {host} answered HTTP {exc.code}") from None
        raise PermanentError(f"the checkpoint webhook at {host} refused the checkpoint: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"the checkpoint webhook at {host} is unreachable: {getattr(exc, 'reason', exc)}") from None


def checkpoint_syslog(*, address: str, checkpoint: Checkpoint) -> None:
    """Send ``<pri>slipway-audit-checkpoint: {json}`` to ``udp://host:port``, ``tcp://host:port`` or a socket path."""
    message = f"<{SYSLOG_PRIORITY}>{SYSLOG_TAG}: {checkpoint.to_json()}".encode()
    try:
        if address.startswith(("udp://", "tcp://")):
            parts = urllib.parse.urlsplit(address)
            if not parts.hostname or not parts.port:
                raise PermanentError(f"SLIPWAY_AUDIT_CHECKPOINT_SYSLOG {address!r} needs a host and a port")
            if parts.scheme == "udp":
                with socket.socket(socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET,
                                   socket.SOCK_DGRAM) as sock:
                    sock.sendto(message, (parts.hostname, parts.port))
            else:
                with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
                    sock.sendall(message + b"\n")  # RFC 6587 non-transparent framing
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.send(message)
    except OSError as exc:
        raise TransientError(f"syslog at {address} did not take the checkpoint: {exc}") from None
