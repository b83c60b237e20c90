"""Bulk-seed a SQLite database with N runs for the history benchmarks.

Runs are written with raw `executemany` in big transactions (1M rows in about a
minute), then the FTS index and the rollups are built in one go. Seeded files are
cached under bench/out/ keyed by SEED_VERSION and N, and re-seeded after MAX_AGE_DAYS
so "the last 30 days" always holds data.

    python bench/seed.py 1000000      # seed (or reuse) and print the file
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SEED_VERSION = 4  # 3: Run.started_at, FTS over errors (migrations 0007, 0008); 4: batch columns (0014-0018)
SPAN_DAYS = 365  # every size spreads its runs over the same year, like a smaller or bigger team
MAX_AGE_DAYS = 3
RARE_WORD = "zephyr"  # in ~0.5% of runs: the text-search benchmark looks for it
BENCH_USER = "bench"
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("google", "gemini-1.5-flash"),
    ("mistral", "mistral-small-latest"),
    ("ollama", "llama3.1"),
]
WORDS = (
    "order refund parcel invoice account password delivery late broken price discount summary memo meeting "
    "customer agent reply policy warranty return label address update cancel subscription plan upgrade billing "
    "error login email phone support ticket urgent thanks please help question answer product size colour "
    "stock shipping tracking number week today tomorrow friday store online app crash screen payment card"
).split()


def db_file(n: int) -> Path:
    return OUT / f"history-v{SEED_VERSION}-{n}.sqlite3"


def setup_django(path: Path) -> None:
    """Point Django at `path` (call once per process, before anything imports models)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maximui.settings")
    os.environ.setdefault("MAXIMUI_TESTING", "1")  # throwaway secrets; DEBUG stays off
    import django

    django.setup()


def is_fresh(path: Path, n: int) -> bool:
    meta = path.with_suffix(".json")
    if not path.exists() or not meta.exists():
        return False
    info = json.loads(meta.read_text())
    age = dt.date.today() - dt.date.fromisoformat(info["seeded_on"])
    return info.get("runs") == n and age.days <= MAX_AGE_DAYS


def ensure(n: int) -> Path:
    """Seed (or reuse) the database for n runs and point Django at it."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = db_file(n)
    if is_fresh(path, n):
        setup_django(path)
        return path
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), path.with_suffix(".json")):
        stale.unlink(missing_ok=True)
    setup_django(path)
    started = time.perf_counter()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ids = _seed_objects()
    from django.db import connection

    connection.close()
    _seed_runs(path, n, ids)
    from prompts_app.services import rollups

    rows = rollups.rebuild()
    connection.close()
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")  # what `PRAGMA optimize` keeps up to date in a long-lived database
    elapsed = time.perf_counter() - started
    path.with_suffix(".json").write_text(
        json.dumps(
            {"runs": n, "seeded_on": dt.date.today().isoformat(), "seconds": round(elapsed, 1), "rollup_rows": rows}
        )
    )
    print(f"seeded {n:,} runs into {path.name} in {elapsed:.1f}s ({rows:,} rollup rows)", file=sys.stderr)
    return path


def _seed_objects() -> dict:
    """Users, 4 workspaces, 12 prompts, ~30 versions through the ORM (few rows, real defaults)."""
    from django.contrib.auth import get_user_model

    from prompts_app.models import Membership, Prompt, PromptVersion, Role, Workspace

    rng = random.Random(1)
    User = get_user_model()
    bench = User.objects.create_user(BENCH_USER, password="pw-bench")
    people = [User.objects.create_user(f"user{i}", password="x") for i in range(10)]
    versions = []
    for w in range(4):
        workspace = Workspace(name=f"Workspace {w}", maxim_id=f"ws-{w}", base_url="https://maxim.test")
        workspace.set_api_key("bench-key-0000")
        workspace.save()
        Membership.objects.create(workspace=workspace, user=bench, role=Role.OWNER)
        members = [bench, *people[w * 2 : w * 2 + 3]]
        for person in members[1:]:
            Membership.objects.create(workspace=workspace, user=person, role=Role.EDITOR)
        for p in range(3):
            prompt = Prompt.objects.create(workspace=workspace, maxim_id=f"p-{w}-{p}", name=f"Prompt {w}.{p}")
            for v in range(rng.choice([2, 3])):
                provider, model = rng.choice(MODELS)
                version = PromptVersion.objects.create(
                    prompt=prompt, maxim_id=f"v-{w}-{p}-{v}", number=v + 1, provider=provider, model_name=model
                )
                versions.append((workspace.pk, prompt.pk, version.pk, provider, model, [u.pk for u in members]))
    return {"versions": versions}


def _seed_runs(path: Path, n: int, ids: dict) -> None:
    from prompts_app.models import Run

    fields = [f for f in Run._meta.concrete_fields if f.column != "id"]
    columns = [f.column for f in fields]
    defaults = []
    for f in fields:  # every column gets its model default, so new fields do not break the seed
        value = f.get_default()
        defaults.append(json.dumps(value) if f.get_internal_type() == "JSONField" else value)
    position = {c: i for i, c in enumerate(columns)}
    rng = random.Random(SEED_VERSION)
    end = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    start = end - dt.timedelta(days=SPAN_DAYS)
    step = (end - start) / n
    versions = ids["versions"]
    sql = f"INSERT INTO prompts_app_run ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    triggers = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name='prompts_app_run'"
    ).fetchall()
    for name, _ in triggers:  # the FTS index is rebuilt once at the end instead of row by row
        db.execute(f"DROP TRIGGER {name}")
    batch: list[tuple] = []
    db.execute("BEGIN")
    for i in range(n):
        ws, prompt, version, provider, model, members = versions[int(rng.random() ** 1.3 * len(versions))]
        created = start + step * i
        pending = i >= n - 5  # the newest few are still running
        roll = rng.random()
        status = "pending" if pending else "success" if roll < 0.93 else "failed" if roll < 0.98 else "interrupted"
        row = list(defaults)
        words = rng.choices(WORDS, k=rng.randrange(6, 18))
        if rng.random() < 0.005:
            words.append(RARE_WORD)
        p_tok, c_tok = (rng.randrange(50, 4000), rng.randrange(10, 800)) if status == "success" else (0, 0)
        cost = None
        if status == "success" and provider != "ollama":
            cost = p_tok * 2500 + c_tok * 10000  # $2.50 / $10 per 1M tokens, in nano-USD
        values = {
            "workspace_id": ws,
            "prompt_id": prompt,
            "version_id": version,
            "user_id": rng.choice(members),
            "status": status,
            "provider": provider,
            "model_name": model,
            "input_text": " ".join(words),
            "output_text": "" if status != "success" else " ".join(rng.choices(WORDS, k=rng.randrange(8, 24))),
            "error": "Maxim answered HTTP 500" if status == "failed" else "",
            "prompt_tokens": p_tok,
            "completion_tokens": c_tok,
            "total_tokens": p_tok + c_tok,
            "latency_ms": None if pending else round(rng.uniform(200, 4000), 1),
            "cost_nano": cost,
            "price_source": "genai-prices" if cost is not None else "",
            "created_at": str(created),
            "finished_at": None if pending else str(created + dt.timedelta(seconds=2)),
            "rolled_up": False,
        }
        for column, value in values.items():
            row[position[column]] = value
        batch.append(tuple(row))
        if len(batch) >= 50_000:
            db.executemany(sql, batch)
            batch = []
    db.executemany(sql, batch)
    db.execute("COMMIT")
    db.execute("INSERT INTO prompts_app_run_fts(prompts_app_run_fts) VALUES ('rebuild')")
    for _, trigger_sql in triggers:
        db.execute(trigger_sql)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


if __name__ == "__main__":
    print(ensure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
