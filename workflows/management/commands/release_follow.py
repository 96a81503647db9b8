"""Follow a release in a terminal or CI job: its timeline and a progress bar, until it finishes.

The exit code tells how it ended: 0 succeeded; 1 failed, rolled back,
cancelled or rejected; 3 no such release; 4 still running when ``--timeout``
ran out (2 stays argparse's usage error).
"""
import time

from django.core.management.base import BaseCommand, CommandError

from workflows.choices import ReleaseState
from workflows.models import Release, StepRun
from workflows.timeline import format_duration, is_final, progress_bar

EXIT_ENDED_OTHERWISE = 1
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4


class Command(BaseCommand):
    help = "Print a release's timeline and progress until it finishes; the exit code tells success (0) or not."

    def add_arguments(self, parser):
        parser.add_argument("release_id", type=int)
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between looks (default 1).")
        parser.add_argument("--timeout", type=float, default=0,
                            help=f"Give up after this many seconds with exit code {EXIT_TIMEOUT} (default: wait for ever).")

    def handle(self, *args, release_id: int, interval: float, timeout: float, **options):
        release = Release.objects.select_related("application__project", "environment").filter(id=release_id).first()
        if release is None:
            raise CommandError(f"No release #{release_id}.", returncode=EXIT_NOT_FOUND)
        self.stdout.write(f"Release #{release.id}: {release.application.project.slug}/{release.application.name} "
                          f"{release.version} → {release.environment.name}")
        deadline = time.monotonic() + timeout if timeout > 0 else None
        printed: dict[int, tuple[str, int]] = {}  # step run id → (status, log characters printed)
        last_state = ""
        while True:
            state, reason = Release.objects.values_list("state", "failure_reason").get(id=release_id)
            self._print_steps(release_id, printed)
            if state != last_state:
                self.stdout.write(progress_bar(state))
                last_state = state
            if is_final(state):
                return self._finish(release_id, state, reason)
            if deadline is not None and time.monotonic() >= deadline:
                raise CommandError(f"Release #{release_id} is still {state} after {timeout:g} s.", returncode=EXIT_TIMEOUT)
            time.sleep(interval)

    def _print_steps(self, release_id: int, printed: dict[int, tuple[str, int]]) -> None:
        """Each step when its status changes, and its log lines as they arrive."""
        for run in StepRun.objects.filter(release_id=release_id).order_by("started_at", "id"):
            status, shown = printed.get(run.id, ("", 0))
            if run.status != status:
                error = f": {run.error}" if run.error else ""
                self.stdout.write(f"  {run.get_step_display():<9} #{run.attempt} {run.get_status_display().lower():<16} "
                                  f"{format_duration(run.duration_seconds)}{error}")
            for line in run.log[shown:].splitlines():
                self.stdout.write(f"      | {line}")
            printed[run.id] = (run.status, len(run.log))

    def _finish(self, release_id: int, state: str, reason: str) -> None:
        if state == ReleaseState.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"Release #{release_id} succeeded."))
            return
        raise CommandError(f"Release #{release_id} ended {state}{f': {reason}' if reason else ''}.",
                           returncode=EXIT_ENDED_OTHERWISE)
