"""Verify the audit chain under SLIPWAY_AUDIT_KEYS and against every signed checkpoint; name what is wrong.

Exit status: 0 intact; 1 cannot verify (bad SLIPWAY_AUDIT_KEYS, unreadable checkpoint path);
3 the database's trail was tampered with (a rewritten or removed event, a removed tail, a rewound
chain head, an event under an unknown key id); 4 the database is consistent but a checkpoint is
malformed, forged or edited, or signed under an unknown key id.
"""
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from workflows import anchors
from workflows.audit import DATABASE_KINDS, chain_check
from workflows.chain import keyring

EXIT_UNVERIFIABLE, EXIT_DATABASE_TAMPERED, EXIT_CHECKPOINT_INVALID = 1, 3, 4


class Command(BaseCommand):
    help = ("Re-compute every HMAC link of the audit trail, compare the chain with every signed checkpoint, "
            "and name each rewritten or removed event, removed tail, rewound head, unknown key and bad checkpoint. "
            "Exit 0 intact, 1 cannot verify, 3 the database was tampered with, 4 a checkpoint is invalid.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints", action="append", type=Path, metavar="PATH",
            help="a checkpoint file or directory (repeatable; e.g. a copy gathered from syslog or the webhook "
                 "receiver); default: SLIPWAY_AUDIT_CHECKPOINT_DIR",
        )

    def handle(self, *args, **options):
        paths = options["checkpoints"] or [Path(settings.SLIPWAY_AUDIT_CHECKPOINT_DIR)]
        try:
            key_ids = keyring().ids
            records = [record for path in paths if path.exists() or options["checkpoints"]
                       for record in anchors.checkpoints_read(path)]
            report = chain_check(checkpoints=records)
        except ImproperlyConfigured as exc:
            raise CommandError(f"Cannot verify the audit chain: {exc}", returncode=EXIT_UNVERIFIABLE) from None
        except OSError as exc:
            raise CommandError(f"Cannot read the checkpoints: {exc}", returncode=EXIT_UNVERIFIABLE) from None

        for finding in report.findings:
            self.stderr.write(f"- {finding.message}")
        if report.total_findings > len(report.findings):
            self.stderr.write(f"- … and {report.total_findings - len(report.findings)} more")
        summary = (f"{report.verified} events verified (of {report.events} read) under key(s) {', '.join(key_ids)}; "
                   f"{report.checkpoints} valid checkpoint(s) compared")
        more = f" (+{report.total_findings - 1} more, listed above)" if report.total_findings > 1 else ""
        if report.database_broken:
            first = next(finding for finding in report.findings if finding.kind in DATABASE_KINDS)
            raise CommandError(f"Audit chain broken: {first.message}{more}. {summary}.",
                               returncode=EXIT_DATABASE_TAMPERED)
        if not report.intact:
            raise CommandError(f"Audit checkpoints invalid: {report.findings[0].message}{more}. The chain in the "
                               f"database is consistent: {summary}.", returncode=EXIT_CHECKPOINT_INVALID)
        if not report.checkpoints:
            self.stderr.write(self.style.WARNING(
                f"No checkpoint found in {', '.join(map(str, paths))}: a removed tail with a rewound chain head "
                "could not be detected. The beat writes one every SLIPWAY_AUDIT_CHECKPOINT_SECONDS; "
                "`manage.py audit_checkpoint` writes one now."))
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {summary}."))
