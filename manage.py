#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (load the settings: they refuse to start half-configured)
    except ImproperlyConfigured as exc:
        sys.exit(f"manage.py: {exc} For local development, set DEBUG=1 (see README).")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
