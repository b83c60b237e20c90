from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from prompts_app import crypto
from prompts_app.models import Workspace


class Command(BaseCommand):
    help = "Re-encrypt every stored API key with the first key of MAXIMUI_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        count = 0
        with transaction.atomic():
            for workspace in Workspace.objects.select_for_update().only("pk", "api_key_encrypted"):
                workspace.api_key_encrypted = crypto.rotate(workspace.api_key_encrypted)
                workspace.save(update_fields=["api_key_encrypted"])
                count += 1
        self.stdout.write(f"Re-encrypted {count} API key(s) with the first encryption key.")
