"""Write a signed checkpoint of the audit chain now (the beat writes one every SLIPWAY_AUDIT_CHECKPOINT_SECONDS)."""
from django.core.management.base import BaseCommand, CommandError

from workflows.services.checkpoints import audit_checkpoint_write


class Command(BaseCommand):
    help = ("Sign the audit chain's newest event id and link and append it to the checkpoint directory "
            "(plus the webhook/syslog copies when configured). Exit 1 when a copy failed or the chain regressed.")

    def handle(self, *args, **options):
        try:
            written = audit_checkpoint_write()
        except OSError as exc:
            raise CommandError(f"No checkpoint written: {exc}") from None
        checkpoint = written.checkpoint
        self.stdout.write(f"Checkpoint appended to {written.path}: event #{checkpoint.event_id}, "
                          f"link {checkpoint.hash[:16]}…, signed with key {checkpoint.key!r} at {checkpoint.written_at}.")
        problems = list(written.copy_failures)
        if written.regression:
            problems.insert(0, f"the chain regressed since the previous checkpoint: {written.regression}")
        if problems:
            raise CommandError("; ".join(problems))
