"""Django's SMTP email backend, connecting only where the outbound policy allows.

A mail relay is an outbound target like any other: its address is resolved once, checked against
``SLIPWAY_OUTBOUND_ALLOW`` (a relay on a private network needs its CIDR there), and the socket connects
to the address checked (``paas_site.outbound.guarded_create_connection``). STARTTLS and implicit TLS
still verify the relay's certificate for its host name.
"""
import smtplib

from django.core.mail.backends.smtp import EmailBackend

from .outbound import guarded_create_connection


class _GuardedSMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return guarded_create_connection((host, port), timeout, source_address=self.source_address)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = guarded_create_connection((host, port), timeout, source_address=self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class GuardedEmailBackend(EmailBackend):
    @property
    def connection_class(self):
        return _GuardedSMTPSSL if self.use_ssl else _GuardedSMTP
