"""Re-anchor the audit trail: every existing SHA-256 link becomes an HMAC-SHA256 link under SLIPWAY_AUDIT_KEYS.

Why re-anchor rather than keep "legacy" links: a plain SHA-256 link can be recomputed by anyone who can
write the database, so a verifier that still accepted them would let an attacker downgrade the whole chain
to SHA-256 and rewrite it. After this migration every event names its key id and every link needs the key.

The old chain is verified first; a broken one stops the migration (naming the event), because re-anchoring
would bless the tampering. SLIPWAY_AUDIT_REANCHOR_BROKEN=accept re-anchors a broken chain as it stands
(after it has been investigated); the events from the break on are then vouched for only from now on.
Reversing recomputes the SHA-256 links.
"""
import os

from django.db import migrations, models

from workflows import chain
from workflows.models import AUDIT_HASHED_FIELDS, audit_canonical

BATCH = 2000


def _relink(apps, link):
    """Walk the chain in id order, recomputing each link with ``link(prev, canonical, event)``."""
    AuditEvent = apps.get_model("workflows", "AuditEvent")
    AuditChainHead = apps.get_model("workflows", "AuditChainHead")
    rows = AuditEvent._base_manager.order_by("id")
    prev, last_id = chain.GENESIS_HASH, 0
    while True:
        batch = list(rows.filter(id__gt=last_id)[:BATCH])
        if not batch:
            break
        for event in batch:
            event.prev_hash = prev
            event.hash = prev = link(prev, audit_canonical(*(getattr(event, name) for name in AUDIT_HASHED_FIELDS)), event)
        AuditEvent._base_manager.bulk_update(batch, ["prev_hash", "hash", "key_id"])
        last_id = batch[-1].id
    AuditChainHead._base_manager.update_or_create(id=1, defaults={"last_hash": prev})


def _legacy_break(apps) -> str:
    AuditEvent = apps.get_model("workflows", "AuditEvent")
    prev = chain.GENESIS_HASH
    rows = AuditEvent._base_manager.order_by("id").values_list("id", "prev_hash", "hash", *AUDIT_HASHED_FIELDS)
    for event_id, prev_hash, link, *fields in rows.iterator(chunk_size=BATCH):
        if prev_hash != prev:
            return f"event #{event_id}: its prev_hash does not match the event before it (an event was removed)"
        if chain.legacy_hash(prev_hash, audit_canonical(*fields)) != link:
            return f"event #{event_id}: its content does not match its hash (it was altered)"
        prev = link
    head = apps.get_model("workflows", "AuditChainHead")._base_manager.filter(id=1).values_list("last_hash", flat=True)
    if (head.first() or chain.GENESIS_HASH) != prev:
        return "the chain head names a hash that is not the newest event's (the newest events were removed)"
    return ""


def reanchor(apps, schema_editor):
    broken = _legacy_break(apps)
    if broken and os.environ.get("SLIPWAY_AUDIT_REANCHOR_BROKEN") != "accept":
        raise RuntimeError(
            f"The existing audit chain is broken at {broken}; re-anchoring it under SLIPWAY_AUDIT_KEYS would "
            "bless that. Investigate, then set SLIPWAY_AUDIT_REANCHOR_BROKEN=accept to re-anchor it as it stands.")
    key_id = chain.signing_key_id()  # SLIPWAY_AUDIT_KEYS: required without DEBUG, so a real key here

    def hmac_link(prev, canonical, event):
        event.key_id = key_id
        return chain.link_hash(prev, canonical, key_id)

    _relink(apps, hmac_link)


def unanchor(apps, schema_editor):
    def sha256_link(prev, canonical, event):
        event.key_id = ""
        return chain.legacy_hash(prev, canonical)

    _relink(apps, sha256_link)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0005_release_package")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(default="", help_text="the SLIPWAY_AUDIT_KEYS key id the link is signed with",
                                   max_length=32),
            preserve_default=False,
        ),
        migrations.RunPython(reanchor, unanchor, elidable=False),
    ]
