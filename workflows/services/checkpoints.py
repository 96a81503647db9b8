"""Audit checkpoints: the chain's newest link, signed, written outside the database.

The append-only file is the record (its failure is an error); the webhook and
syslog copies are best effort (a failed copy is logged and reported, and the
next checkpoint supersedes it). Writing also compares the chain with the
previous checkpoint in the file and logs an error when the events it named
are gone, so a removed tail raises an alarm before anyone runs audit_verify.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from paas_site.errors import ExternalError

from .. import anchors, chain
from ..models import AuditEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointWritten:
    checkpoint: chain.Checkpoint
    path: Path
    copy_failures: list[str] = field(default_factory=list)
    regression: str = ""  # the chain no longer holds what the previous checkpoint named


def audit_checkpoint_write(*, only_if_moved: bool = False) -> CheckpointWritten | None:
    """Sign the newest event's id and link and append it; ``only_if_moved``: None when the last one names it."""
    directory = Path(settings.SLIPWAY_AUDIT_CHECKPOINT_DIR)
    newest = AuditEvent.objects.order_by("-id").values_list("id", "hash", "key_id").first()
    event_id, link, event_key = newest or (0, chain.GENESIS_HASH, "")
    previous = anchors.checkpoint_last(directory=directory)
    if only_if_moved and previous and (previous.get("event_id"), previous.get("hash")) == (event_id, link):
        return None
    regression = _regression(previous)
    if regression:
        logger.error("audit chain: %s; run manage.py audit_verify", regression)
    checkpoint = chain.checkpoint_sign(event_id=event_id, link=link, event_key=event_key,
                                       written_at=timezone.now().isoformat())
    path = anchors.checkpoint_append(directory=directory, checkpoint=checkpoint)
    failures = []
    if settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK:
        try:
            anchors.checkpoint_post(url=settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK,
                                    secret=settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK_SECRET, checkpoint=checkpoint)
        except ExternalError as exc:
            failures.append(str(exc))
    if settings.SLIPWAY_AUDIT_CHECKPOINT_SYSLOG:
        try:
            anchors.checkpoint_syslog(address=settings.SLIPWAY_AUDIT_CHECKPOINT_SYSLOG, checkpoint=checkpoint)
        except ExternalError as exc:
            failures.append(str(exc))
    for failure in failures:
        logger.warning("audit checkpoint for event #%s not copied: %s", event_id, failure)
    return CheckpointWritten(checkpoint=checkpoint, path=path, copy_failures=failures, regression=regression)


def _regression(previous: dict | None) -> str:
    """What is wrong when the event the previous checkpoint named is no longer there as it was."""
    if not previous or not isinstance(previous.get("event_id"), int) or not previous["event_id"]:
        return ""
    now = AuditEvent.objects.filter(id=previous["event_id"]).values_list("hash", flat=True).first()
    if now == previous.get("hash"):
        return ""
    what = "is gone" if now is None else "has a different link"
    return f"event #{previous['event_id']}, named by the checkpoint of {previous.get('written_at')}, {what}"
