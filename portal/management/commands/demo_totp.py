import base64
from binascii import unhexlify

from django.core.management import BaseCommand

from accounts.demo import DEMO_TOTP_KEY_HEX, demo_totp_code


class Command(BaseCommand):
    help = "Print the demo users' current TOTP code (and the secret for an authenticator app)."

    def handle(self, *args, **options):
        secret = base64.b32encode(unhexlify(DEMO_TOTP_KEY_HEX)).decode().rstrip("=")
        self.stdout.write(f"Current code: {demo_totp_code()}  (changes every 30 seconds)")
        self.stdout.write(f"Authenticator secret (base32): {secret}")
