"""An email backend that fails the first FAILURES sends (then delivers to locmem's outbox)."""

import smtplib

from django.core.mail.backends.locmem import EmailBackend

FAILURES = 0


class FlakyBackend(EmailBackend):
    def send_messages(self, messages):
        global FAILURES
        if FAILURES > 0:
            FAILURES -= 1
            raise smtplib.SMTPServerDisconnected("SMTP server went away")
        return super().send_messages(messages)
