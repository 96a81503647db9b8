"""Run the whole platform on its embedded defaults, for a demo on one machine.

Migrates the SQLite database, seeds demo data, then runs the processes of the
platform under honcho (the Procfile process manager) until Ctrl-C, which
stops everything it started.
"""
import os
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager


class Command(BaseCommand):
    help = "Set up and run Slipway locally: database, demo data, web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Web server port.")
        parser.add_argument("--password", help="Password for every demo user (default: random, printed).")

    def handle(self, *args, port, password, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", password=password)
        self.stdout.write(self.style.SUCCESS(f"\nSlipway console: http://127.0.0.1:{port}/admin/"))
        self.stdout.write(f"API: http://127.0.0.1:{port}/api/v1/  (docs: http://127.0.0.1:{port}/api/docs/)")
        self.stdout.write("Press Ctrl-C to stop.\n")

        manage = f"{sys.executable} manage.py"
        manager = Manager()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        manager.add_process("web", f"{manage} runserver 127.0.0.1:{port} --noreload", env=env)
        manager.loop()
        sys.exit(manager.returncode)
