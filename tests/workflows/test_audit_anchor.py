"""The audit chain anchored outside the database: HMAC links under SLIPWAY_AUDIT_KEYS and signed checkpoints.

The attacker here can write the database (raw SQL) but holds neither a key nor the checkpoint directory.
"""
import hashlib
import hmac
import importlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, UserFactory
from workflows import audit, chain
from workflows.anchors import FILE_NAME, checkpoint_append
from workflows.models import AUDIT_HASHED_FIELDS, AuditEvent, audit_canonical

pytestmark = pytest.mark.django_db

K1 = "k1:" + "1" * 40
K2 = "k2:" + "2" * 40


def record(n: int) -> list[AuditEvent]:
    app, env, user = ApplicationFactory(), EnvironmentFactory(), UserFactory()
    with transaction.atomic():
        return [audit.application_scaled(actor=user, application=app, environment=env, before=i, after=i + 1)
                for i in range(n)]


def verify(*args: str) -> tuple[int, str, str]:
    """Run audit_verify: (exit status, stdout, stderr + the error it ends with)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def checkpoint_now() -> str:
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    return out.getvalue()


def sha256_link(prev: str, canonical: dict) -> str:
    """What an attacker can always compute: the plain SHA-256 link the chain used before HMAC."""
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


def relink_from(event_id: int, prev: str, **set_columns) -> str:
    """Recompute every link from ``event_id`` on with SHA-256 (and set columns), and the head: as an attacker."""
    rows = AuditEvent.objects.filter(id__gte=event_id).order_by("id").values_list("id", *AUDIT_HASHED_FIELDS)
    with connection.cursor() as cursor:
        for row_id, *fields in list(rows):
            link = sha256_link(prev, audit_canonical(*fields))
            assignments = ", ".join(f"{column} = %s" for column in set_columns)
            cursor.execute(f"UPDATE workflows_auditevent SET prev_hash = %s, hash = %s{', ' if set_columns else ''}"
                           f"{assignments} WHERE id = %s", [prev, link, *set_columns.values(), row_id])
            prev = link
        cursor.execute("UPDATE workflows_auditchainhead SET last_hash = %s WHERE id = 1", [prev])
    return prev


def test_a_rewritten_event_is_named_even_when_every_later_link_is_recomputed():
    # given: five events, and an attacker who rewrites the second and recomputes every later link
    events = record(5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET message = %s WHERE id = %s",
                       ["scaled by nobody", events[1].id])
    relink_from(events[1].id, events[0].hash)

    # when
    status, _, err = verify()

    # then: the rewritten event is named, and so are the links recomputed after it
    assert status == 3, err
    assert f"event #{events[1].id} (application.scaled" in err
    assert "the event was rewritten" in err
    assert "the 3 events after it do not match their links either" in err


def test_a_chain_downgraded_to_unkeyed_links_is_named():
    events = record(3)
    relink_from(events[0].id, chain.GENESIS_HASH, key_id="")

    status, _, err = verify()

    assert status == 3, err
    assert f"event #{events[0].id} (application.scaled" in err
    assert "is linked under key id '', which SLIPWAY_AUDIT_KEYS does not hold" in err


def test_a_removed_tail_with_a_rewound_head_is_named_by_the_checkpoint():
    # given: a checkpoint of five events; then the newest two removed and the head row rewound to match
    events = record(5)
    checkpoint_now()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id > %s", [events[2].id])
        cursor.execute("UPDATE workflows_auditchainhead SET last_hash = %s WHERE id = 1", [events[2].hash])
    assert audit.chain_verify()[2] == "", "the database alone is consistent again: only the checkpoint can tell"

    # when
    status, _, err = verify()

    # then
    assert status == 3, err
    assert f"names event #{events[4].id} (link {events[4].hash[:12]}…), which is gone" in err
    assert f"the events after #{events[2].id} were removed and the chain head row rewound to match" in err


def test_a_rewound_head_row_is_named():
    events = record(3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE workflows_auditchainhead SET last_hash = %s WHERE id = 1", [events[0].hash])

    status, _, err = verify()

    assert status == 3, err
    assert f"the chain head names event #{events[0].id}, but 2 later event(s) exist: the head row was rewound" in err


def test_a_deleted_head_row_is_named():
    record(2)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditchainhead")

    status, _, err = verify()

    assert status == 3
    assert "the chain head row is missing: it was deleted" in err


def test_a_chain_cut_and_rebuilt_after_a_checkpoint_is_named(settings):
    # the tail is removed and new events appended in its place: the ids the checkpoint names hold other events
    events = record(3)
    checkpoint_now()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [events[2].id])
        cursor.execute("UPDATE workflows_auditchainhead SET last_hash = %s WHERE id = 1", [events[1].hash])
        cursor.execute("SELECT setval(pg_get_serial_sequence('workflows_auditevent', 'id'), %s)", [events[1].id])
    replacement = record(1)[0]
    assert replacement.id == events[2].id

    status, _, err = verify()

    assert status == 3, err
    assert f"event #{events[2].id} (application.scaled" in err
    assert "is not the event the checkpoint written at" in err


def test_an_edited_checkpoint_is_named(audit_checkpoint_dir):
    # given: two checkpoints; the second edited to claim the chain ended earlier, then a forged line appended
    events = record(3)
    checkpoint_now()
    more = record(2)
    checkpoint_now()
    path = audit_checkpoint_dir / FILE_NAME
    lines = path.read_text().splitlines()
    edited = json.loads(lines[1]) | {"event_id": events[2].id, "hash": events[2].hash}
    forged = json.loads(lines[1]) | {"event_id": more[1].id + 5, "signature": "0" * 64}
    path.write_text("\n".join([lines[0], json.dumps(edited), json.dumps(forged), "{not json", ""]))

    # when
    status, _, err = verify()

    # then: each bad line named by file and line number; the database itself is consistent
    assert status == 4, err
    assert f"checkpoint {path}:2 is not valid: its signature does not match its content: it was forged or edited" in err
    assert f"checkpoint {path}:3 is not valid: its signature does not match" in err
    assert f"checkpoint {path}:4 cannot be read: malformed JSON" in err
    assert "The chain in the database is consistent" in err


def test_a_checkpoint_under_an_unknown_key_is_named(settings, audit_checkpoint_dir):
    settings.SLIPWAY_AUDIT_KEYS = [K1]
    record(1)
    checkpoint_now()
    settings.SLIPWAY_AUDIT_KEYS = [K2]

    status, _, err = verify()

    assert status == 3, err  # the event under k1 cannot be verified either
    assert f"checkpoint {audit_checkpoint_dir / FILE_NAME}:1 is signed with key id 'k1', which SLIPWAY_AUDIT_KEYS " \
        "does not hold" in err


def test_events_and_checkpoints_under_a_rotated_key_verify_with_both_keys_configured(settings):
    # given: events and a checkpoint under k1, then k2 put first (it signs from now on)
    settings.SLIPWAY_AUDIT_KEYS = [K1]
    first = record(2)
    checkpoint_now()
    settings.SLIPWAY_AUDIT_KEYS = [K2, K1]
    second = record(2)
    checkpoint_now()

    # then: each event records its key, and both keys verify the whole chain and both checkpoints
    assert [event.key_id for event in first + second] == ["k1", "k1", "k2", "k2"]
    status, out, err = verify()
    assert status == 0, err
    assert "4 events verified (of 4 read) under key(s) k2, k1; 2 valid checkpoint(s) compared" in out

    # when k1 is dropped too early, the events it signed are named, not passed
    settings.SLIPWAY_AUDIT_KEYS = [K2]
    status, _, err = verify()
    assert status == 3
    assert f"event #{first[0].id} (application.scaled" in err
    assert "linked under key id 'k1', which SLIPWAY_AUDIT_KEYS does not hold: configure that key again" in err


def test_a_malformed_audit_key_is_a_clear_error_naming_it(settings):
    record(1)
    settings.SLIPWAY_AUDIT_KEYS = ["k1:too-short-a-secret"]

    status, _, err = verify()

    assert status == 1
    assert "SLIPWAY_AUDIT_KEYS: the secret of key 'k1' is shorter than 32 characters" in err
    assert "too-short-a-secret" not in err


def test_a_checkpoint_is_one_signed_line_appended_and_holds_no_secret(audit_checkpoint_dir):
    events = record(2)
    assert "event #" in checkpoint_now()
    first = (audit_checkpoint_dir / FILE_NAME).read_bytes()
    checkpoint_now()

    content = (audit_checkpoint_dir / FILE_NAME).read_bytes()
    assert content.startswith(first) and content.count(b"\n") == 2
    checkpoints = [chain.checkpoint_verify(json.loads(line)) for line in content.splitlines()]
    assert [(c.event_id, c.hash, c.event_key, c.key) for c in checkpoints] == [
        (events[1].id, events[1].hash, "dev", "dev")] * 2
    assert chain.keyring().signing[1] not in content


def test_writing_a_checkpoint_raises_the_alarm_when_the_previous_one_names_a_removed_event():
    events = record(3)
    checkpoint_now()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [events[2].id])

    with pytest.raises(CommandError, match=rf"the chain regressed since the previous checkpoint: event #{events[2].id}"
                                           r", named by the checkpoint of .*, is gone"):
        checkpoint_now()


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_writes_checkpoints_in_the_worker_and_skips_an_unmoved_chain(worker, audit_checkpoint_dir):
    from django.conf import settings

    from tests.conftest import wait_until_idle
    from workflows.tasks import audit_checkpoint_write_task

    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry == {"task": "workflows.audit_checkpoint_write", "schedule": settings.SLIPWAY_AUDIT_CHECKPOINT_SECONDS}
    path = audit_checkpoint_dir / FILE_NAME

    events = record(2)
    audit_checkpoint_write_task.delay()
    wait_until_idle(worker)
    audit_checkpoint_write_task.delay()  # nothing happened since: no second line
    wait_until_idle(worker)
    assert [json.loads(line)["event_id"] for line in path.read_text().splitlines()] == [events[1].id]

    later = record(1)
    audit_checkpoint_write_task.delay()
    wait_until_idle(worker)
    assert [json.loads(line)["event_id"] for line in path.read_text().splitlines()] == [events[1].id, later[0].id]
    assert verify()[0] == 0


class Receiver:
    """A loopback HTTP server keeping the bodies POSTed to it."""

    def __init__(self):
        self.bodies: list[tuple[bytes, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.bodies.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/checkpoints"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver():
    peer = Receiver()
    yield peer
    peer.server.shutdown()
    peer.server.server_close()


def test_checkpoints_are_copied_to_a_webhook_and_syslog_and_the_copies_verify(settings, receiver, tmp_path):
    # given: a webhook with a secret and a syslog listener on loopback
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.settimeout(10)
    settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK = receiver.url
    settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK_SECRET = "hook-secret"
    settings.SLIPWAY_AUDIT_CHECKPOINT_SYSLOG = f"udp://127.0.0.1:{syslog.getsockname()[1]}"
    events = record(2)

    # when
    checkpoint_now()

    # then: the webhook got the signed checkpoint, syslog a tagged line with the same checkpoint
    (body, headers), = receiver.bodies
    assert headers["X-Slipway-Signature"] == "sha256=" + hmac.new(b"hook-secret", body, "sha256").hexdigest()
    line = syslog.recv(4096).decode()
    syslog.close()
    assert line.startswith("<86>slipway-audit-checkpoint: {")
    assert json.loads(body)["event_id"] == json.loads(line.partition(": ")[2])["event_id"] == events[1].id

    # and either copy verifies the chain on its own, as the directory does
    (tmp_path / "webhook.jsonl").write_bytes(body + b"\n")
    (tmp_path / "syslog.log").write_text(line + "\n")
    status, out, err = verify("--checkpoints", str(tmp_path / "webhook.jsonl"), "--checkpoints",
                              str(tmp_path / "syslog.log"))
    assert status == 0, err
    assert "2 valid checkpoint(s) compared" in out


def test_a_failed_copy_is_reported_without_the_webhook_credentials_and_the_file_still_holds_it(
    settings, audit_checkpoint_dir
):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK = f"http://anchor:pa55word@127.0.0.1:{port}/in"
    record(1)

    with pytest.raises(CommandError) as failure:
        checkpoint_now()

    assert f"the checkpoint webhook at 127.0.0.1:{port} is unreachable" in str(failure.value)
    assert "pa55word" not in str(failure.value)
    assert len((audit_checkpoint_dir / FILE_NAME).read_text().splitlines()) == 1


def test_an_explicit_checkpoint_path_that_does_not_exist_cannot_be_verified(tmp_path):
    status, _, err = verify("--checkpoints", str(tmp_path / "missing.jsonl"))
    assert status == 1
    assert "Cannot read the checkpoints" in err


# -- the migration that re-anchors the events written before the HMAC chain ---------------------
reanchoring = importlib.import_module("workflows.migrations.0006_audit_hmac_chain")


def legacy_chain(events: list[AuditEvent]) -> None:
    """Turn events into what migration 0006 finds: SHA-256 links, no key id."""
    relink_from(events[0].id, chain.GENESIS_HASH, key_id="")


def test_the_migration_reanchors_a_sound_sha256_chain_under_the_signing_key(settings):
    settings.SLIPWAY_AUDIT_KEYS = [K2, K1]
    events = record(4)
    legacy_chain(events)
    assert verify()[0] == 3  # legacy links are not accepted as they stand

    reanchoring.reanchor(apps, None)

    assert set(AuditEvent.objects.values_list("key_id", flat=True)) == {"k2"}
    assert audit.chain_verify() == (4, None, "")
    assert list(AuditEvent.objects.order_by("id").values_list("message", flat=True)) == [e.message for e in events]


def test_the_migration_refuses_to_bless_a_tampered_sha256_chain():
    events = record(3)
    legacy_chain(events)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET message = %s WHERE id = %s", ["forged", events[1].id])

    with pytest.raises(RuntimeError, match=rf"broken at event #{events[1].id}: its content does not match its hash"):
        reanchoring.reanchor(apps, None)
    assert set(AuditEvent.objects.values_list("key_id", flat=True)) == {""}


def test_the_migration_reverses_to_sha256_links():
    events = record(2)
    reanchoring.unanchor(apps, None)
    assert reanchoring._legacy_break(apps) == ""
    reanchoring.reanchor(apps, None)
    assert audit.chain_verify() == (2, None, "")
    assert AuditEvent.objects.get(id=events[0].id).hash == events[0].hash  # same key, same link


def test_checkpoint_lines_from_concurrent_writers_never_interleave(audit_checkpoint_dir):
    signed = [chain.checkpoint_sign(event_id=n, link=f"{n:064x}", event_key="dev", written_at=f"t{n}")
              for n in range(1, 41)]
    threads = [threading.Thread(target=checkpoint_append, kwargs={"directory": audit_checkpoint_dir, "checkpoint": c})
               for c in signed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    path = audit_checkpoint_dir / FILE_NAME
    read = sorted(chain.checkpoint_verify(json.loads(line)).event_id for line in path.read_text().splitlines())
    assert read == list(range(1, 41))
    assert path.stat().st_mode & 0o077 == 0, "the file is private to its owner"
