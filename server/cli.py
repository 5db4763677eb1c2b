"""The ``losslens`` command: serve, db upgrade, sync, demo, compact."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_SCRIPT = REPO_ROOT / "examples" / "mlp_digits.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="losslens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765)")
    serve.add_argument("--database-url", help="sqlite:///PATH or postgresql://... URL")
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--demo", action="store_true", help="also stream a demo run into it")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow a non-loopback --host without API keys (LOSSLENS_AUTH)",
    )

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply the migrations")
    up.add_argument("--database-url")

    keys = sub.add_parser("keys", help="API keys (used when LOSSLENS_AUTH=true)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    kc = keys_sub.add_parser("create", help="create a key and print it (shown only once)")
    kc.add_argument("--project", required=True)
    kc.add_argument(
        "--scope",
        choices=("write", "read", "admin"),
        required=True,
        help="write: training jobs; read: dashboards, automation; admin: all",
    )
    kc.add_argument("--name", default="", help="what the key is for")
    kl = keys_sub.add_parser("list", help="list keys (never their secret)")
    kl.add_argument("--project")
    kr = keys_sub.add_parser("revoke", help="revoke a key by id")
    kr.add_argument("key_id", type=int)
    for p in (kc, kl, kr):
        p.add_argument("--database-url")

    sync = sub.add_parser("sync", help="upload runs spooled on disk (offline or unsent)")
    sync.add_argument("path", nargs="?", help="a run's spool folder or the spool root")
    sync.add_argument("--url", help="server URL (default $LOSSLENS_URL or http://127.0.0.1:8765)")

    demo = sub.add_parser("demo", help="train a small real model and stream it to a server")
    demo.add_argument("--url", help="server URL (default $LOSSLENS_URL or http://127.0.0.1:8765)")
    demo.add_argument("args", nargs=argparse.REMAINDER, help="passed to the demo script")

    worker = sub.add_parser("worker", help="run a Celery worker (needs LOSSLENS_BROKER_URL)")
    worker.add_argument("--broker-url", help="redis://host:6379/0 (default $LOSSLENS_BROKER_URL)")
    worker.add_argument("--database-url")
    worker.add_argument("--concurrency", type=int, default=1)

    compact = sub.add_parser("compact", help="merge small chunks of every run")
    compact.add_argument("--database-url")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "db":
        return _db_upgrade(args)
    if args.command == "sync":
        return _sync(args)
    if args.command == "demo":
        return _demo(args.url, args.args)
    if args.command == "compact":
        return _compact(args)
    if args.command == "worker":
        return _worker(args)
    if args.command == "keys":
        return _keys(args)
    return 2


def _settings(database_url: str | None = None, **overrides) -> Settings:
    if database_url:
        overrides["database_url"] = database_url
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _db_upgrade(args) -> int:
    from .storage.migrate import upgrade

    settings = _settings(args.database_url)
    upgrade(settings.resolved_database_url)
    print(f"database is up to date: {_redact(settings.resolved_database_url)}")
    return 0


def _serve(args) -> int:
    import uvicorn

    from .logs import log_config
    from .storage.migrate import upgrade

    settings = _settings(args.database_url, host=args.host, port=args.port)
    if not settings.auth and not _is_loopback(settings.host) and not args.insecure_no_auth:
        print(
            f"refusing to serve on {settings.host} without API keys: anyone who can reach it "
            "could read and write every run. Set LOSSLENS_AUTH=true (and create keys with "
            "`losslens keys create`), or pass --insecure-no-auth.",
            file=sys.stderr,
        )
        return 2
    upgrade(settings.resolved_database_url)
    # The app factory reads its settings from the environment, in every worker process.
    os.environ["LOSSLENS_DATABASE_URL"] = settings.resolved_database_url
    url = f"http://{settings.host}:{settings.port}"
    print(f"Losslens at {url}  (database: {_redact(settings.resolved_database_url)})", flush=True)
    if args.demo:
        threading.Thread(target=_demo_when_up, args=(url,), daemon=True).start()
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_format),
    )
    return 0


def _demo_when_up(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    print(f"streaming a demo run into {url} (examples/mlp_digits.py)", flush=True)
    _demo(url, [])


def _demo(url: str | None, extra: list[str]) -> int:
    if not DEMO_SCRIPT.exists():
        print(f"the demo needs the source checkout ({DEMO_SCRIPT} is missing)", file=sys.stderr)
        return 1
    env = dict(os.environ)
    if url:
        env["LOSSLENS_URL"] = url
    if "--name" not in extra:
        extra = [*extra, "--name", "demo-mlp-digits"]
    return subprocess.call([sys.executable, str(DEMO_SCRIPT), *extra], env=env)


def _sync(args) -> int:
    from client_sdk import sync_spool

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r[{bar}] {done}/{total} batches", end="", file=sys.stderr, flush=True)

    result = sync_spool(args.path, url=args.url, progress=progress)
    print(file=sys.stderr)
    print(result.summary() if hasattr(result, "summary") else result)
    return 0 if not getattr(result, "failed", 0) else 1


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keys(args) -> int:
    from .auth import keys
    from .storage.engine import make_engine, make_sessionmaker
    from .storage.migrate import upgrade

    settings = _settings(args.database_url)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            if args.keys_command == "create":
                key, plaintext = keys.create_key(session, args.project, args.scope, args.name)
                print(plaintext)
                print(
                    f"key {key.id}: project {args.project!r}, scope {args.scope}. Keep it: it "
                    "is not shown again.",
                    file=sys.stderr,
                )
            elif args.keys_command == "list":
                for k in keys.list_keys(session, args.project):
                    state = "revoked" if k.revoked_at else "active"
                    print(f"{k.id}\t{k.project.name}\t{k.scope}\t{k.prefix}...\t{state}\t{k.name}")
            elif not keys.revoke_key(session, args.key_id):
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
    finally:
        engine.dispose()
    return 0


def _worker(args) -> int:
    settings = _settings(args.database_url, broker_url=args.broker_url)
    if not settings.broker_url:
        print(
            "losslens worker needs a broker: set LOSSLENS_BROKER_URL or --broker-url "
            "(without one, `losslens serve` diagnoses in-process)",
            file=sys.stderr,
        )
        return 2
    # The tasks read their settings from the environment, in every worker process.
    os.environ["LOSSLENS_BROKER_URL"] = settings.broker_url
    os.environ["LOSSLENS_DATABASE_URL"] = settings.resolved_database_url
    from worker.celery_app import make_celery

    app = make_celery(settings.broker_url)
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={args.concurrency}",
            "--pool=prefork",
            "-Q",
            "losslens",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _compact(args) -> int:
    from sqlalchemy import select

    from .metrics.service import compact_run
    from .storage.engine import make_engine, make_sessionmaker
    from .storage.models import Run

    settings = _settings(args.database_url)
    engine = make_engine(settings.resolved_database_url)
    removed = 0
    with make_sessionmaker(engine).begin() as session:
        for run_id in session.scalars(select(Run.id)).all():
            removed += compact_run(session, run_id, settings.compact_target_points)
    engine.dispose()
    print(f"compacted: {removed} chunks merged away")
    return 0


def _redact(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


if __name__ == "__main__":
    sys.exit(main())
