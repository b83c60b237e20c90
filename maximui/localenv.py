"""Create `.env.local` with fresh secrets once, for a local `make run`.

Run as `python -m maximui.localenv`; an existing file is left alone, so the
encryption key that protects stored API keys never changes under the user.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent


def write_local_env(path: Path) -> bool:
    if path.exists():
        return False
    lines = [
        "# Generated once by `make run`. Keep it secret: it decrypts the stored API keys.",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        f"MAXIMUI_ENCRYPTION_KEYS={Fernet.generate_key().decode()}",
        "DEBUG=0",
        "",
    ]
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else BASE_DIR / ".env.local"
    if write_local_env(target):
        print(f"Wrote fresh secrets to {target}")
