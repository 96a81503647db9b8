from django.core.management.base import BaseCommand, CommandError

from workflows.audit import chain_verify


class Command(BaseCommand):
    help = "Re-compute the audit trail's hash chain and name the first broken link."

    def handle(self, *args, **options):
        checked, bad_event, reason = chain_verify()
        if reason:
            where = "chain head"
            if bad_event:
                where = f"event #{bad_event.id} ({bad_event.action}, {bad_event.created_at:%Y-%m-%d %H:%M:%S})"
            raise CommandError(f"Audit chain broken at {where}: {reason}. {checked} events before it verified.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} events verified."))
