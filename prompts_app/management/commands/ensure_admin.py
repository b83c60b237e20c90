"""Make sure someone can log in after `make run`, and say how."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an 'admin' superuser with a generated password if no superuser exists, and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, url: str, username: str, **options):
        User = get_user_model()
        password_file = settings.VAR_DIR / "initial-admin-password.txt"
        password = None
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            self.stdout.write(self.style.SUCCESS(f"Created the superuser '{username}'."))
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"maximui is starting on {url}"))
        if password is not None:
            # Printed once, on the start that made it: later starts' logs must not carry it.
            self.stdout.write(f"Log in as '{username}' with the password {password} (also in {password_file}).")
            self.stdout.write("Change it under Admin > Users, then delete that file.")
        elif password_file.exists():
            self.stdout.write(
                f"Log in as '{username}' with the password in {password_file}; delete that file once changed."
            )
        else:
            self.stdout.write(
                "Log in with your superuser (`python manage.py changepassword <name>` resets a password)."
            )
        self.stdout.write("")
