import base64
from binascii import unhexlify

from django.core.management import BaseCommand

from accounts.demo import DEMO_STAFF_EMAIL, DEMO_STAFF_TOTP_KEY_HEX, DEMO_TOTP_KEY_HEX, demo_totp_code


class Command(BaseCommand):
    help = (
        "Print the current TOTP code of the demo organisation's people (and the secret for an authenticator "
        f"app); with --staff, of the demo reseller staff member {DEMO_STAFF_EMAIL} instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--staff", action="store_true", help=f"The staff member's code ({DEMO_STAFF_EMAIL}, for /admin/)."
        )
        parser.add_argument("--code-only", action="store_true", help="Print only the six digits (for scripts).")

    def handle(self, *args, staff=False, code_only=False, **options):
        code = demo_totp_code(staff=staff)
        if code_only:
            self.stdout.write(code)
            return
        key_hex = DEMO_STAFF_TOTP_KEY_HEX if staff else DEMO_TOTP_KEY_HEX
        secret = base64.b32encode(unhexlify(key_hex)).decode().rstrip("=")
        who = DEMO_STAFF_EMAIL if staff else "the demo organisation's people (owner@, licenses@, billing@, viewer@)"
        self.stdout.write(f"For {who}:")
        self.stdout.write(f"Current code: {code}  (changes every 30 seconds)")
        self.stdout.write(f"Authenticator secret (base32): {secret}")
