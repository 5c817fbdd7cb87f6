"""``earmark serve`` and ``earmark transcribe FILE``: settings -> logging -> app."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pydantic import ValidationError

from earmark.config import Settings

logger = logging.getLogger("earmark")
DRAIN_TIMEOUT_S = 20


def _add_settings_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    for name in names:
        field = Settings.model_fields[name]
        flag = "--" + name.replace("_", "-")
        env = f"EARMARK_{name.upper()}"
        default = field.default
        # A description that says its own default (one that depends on the device) keeps it;
        # --help printed two defaults for those.
        said = "(default:" in (field.description or "")
        help_text = f"{field.description} ({'' if said else f'default: {default!r}; '}env {env})"
        # argparse treats help as a %-format string; a literal "%" in a description ("30 %")
        # made `serve --help` crash.
        help_text = help_text.replace("%", "%%")
        if field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text, metavar=name.upper())


def _settings(args: argparse.Namespace, names: list[str]) -> Settings:
    given: dict[str, Any] = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"earmark: invalid settings: {errors}") from None


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations: `--max-jobs 5` was taken as --max-jobs-per-key without a word.
    parser = argparse.ArgumentParser(
        prog="earmark", description="Real-time speech transcription and tagging server.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server", allow_abbrev=False,
                           description="Run the server. Every flag can also be set as an "
                           "EARMARK_* environment variable.")
    _add_settings_flags(serve, list(Settings.model_fields))
    tr = sub.add_parser("transcribe", help="transcribe an audio file and print the finals",
                        allow_abbrev=False)
    tr.add_argument("file", help="any audio or video file FFmpeg can decode")
    tr.add_argument("--json", action="store_true", help="print one JSON object per final")
    _add_settings_flags(tr, ["model", "device", "compute_type", "cpu_threads", "beam_size",
                             "max_utterance_s", "log_level"])
    keys = sub.add_parser("keys", help="make, list and revoke API keys (stored hashed)",
                          allow_abbrev=False)
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key; it is printed once, never stored",
                                 allow_abbrev=False)
    create.add_argument("--name", required=True, help="who or what the key is for")
    for limit in ("rpm", "max_sessions", "max_jobs", "max_streams"):
        create.add_argument("--" + limit.replace("_", "-"), type=int, default=None,
                            help=f"this key's {limit} (default: the server's "
                            f"--{limit.replace('_', '-')}-per-key)")
    keys_sub.add_parser("list", help="list keys (ids and names, never the keys)",
                        allow_abbrev=False)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (takes effect in 2 s)",
                                 allow_abbrev=False)
    revoke.add_argument("key_id")
    for p in (create, *keys_sub.choices.values()):
        if not any(a.dest == "data_dir" for a in p._actions):
            _add_settings_flags(p, ["data_dir", "database_url"])
    db = sub.add_parser("db", help="the database's schema", allow_abbrev=False)
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create or migrate the schema to this "
                                "release's (serve does it at start too)", allow_abbrev=False)
    _add_settings_flags(upgrade, ["data_dir", "database_url"])
    return parser


def _db_upgrade(settings: Settings) -> int:
    from earmark.store.db import migrate, open_database

    db = open_database(settings.data_dir, settings.database_url)
    try:
        print(f"database schema at revision {migrate(db)}")
    finally:
        db.dispose()
    return 0


def _stored_keys(settings: Settings) -> bool:
    from earmark.store.db import open_database
    from earmark.store.keys import KeyStore

    db = open_database(settings.data_dir, settings.database_url)
    try:
        return any(r.revoked is None for r in KeyStore(db).all())
    finally:
        db.dispose()


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from earmark.errors import NotFound
    from earmark.store.db import open_database
    from earmark.store.keys import KeyLimits, KeyStore

    db = open_database(settings.data_dir, settings.database_url)
    store = KeyStore(db)
    try:
        if args.keys_command == "create":
            key, record = store.create(args.name, KeyLimits(args.rpm, args.max_sessions,
                                                            args.max_jobs, args.max_streams))
            print(f"key id {record.key_id} ({record.name}); the key, shown only now:")
            print(key)
        elif args.keys_command == "list":
            for r in store.all():
                state = "revoked" if r.revoked else "active"
                limits = ", ".join(f"{k}={v}" for k, v in vars(r.limits).items() if v)
                print(f"{r.key_id}  {state:7s}  {r.name}  {limits}")
        else:
            try:
                store.revoke(args.key_id)
            except NotFound as exc:
                print(f"earmark: {exc.message}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        return 0
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n for n in Settings.model_fields if hasattr(args, n)]
    settings = _settings(args, names)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # ICE logs every candidate pair at INFO: one peer would flood the server log.
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "serve":
        try:
            return _serve(settings)
        except KeyboardInterrupt:
            # uvicorn re-raises Ctrl-C after its clean shutdown: a traceback there read
            # like a failure.
            return 130
    if args.command == "keys":
        return _keys(args, settings)
    if args.command == "db":
        return _db_upgrade(settings)
    from earmark.live.offline import print_file_transcript

    return print_file_transcript(settings, args.file, as_json=args.json)


def _serve(settings: Settings) -> int:
    import uvicorn

    from earmark.api import redact
    from earmark.api.app import create_app

    if not settings.api_key_list and not _stored_keys(settings):
        if not settings.binds_loopback_only and not settings.allow_unauthenticated_remote:
            print(
                f"earmark: refusing to serve {settings.host} without API keys; set "
                "EARMARK_API_KEYS (or --api-keys) or run `earmark keys create`, bind "
                "127.0.0.1, or pass "
                "--allow-unauthenticated-remote",
                file=sys.stderr,
            )
            return 2
        logger.warning("no API keys configured: anyone who can reach %s may connect",
                       settings.host)
    # The port opens after the models load (uvicorn then logs "Uvicorn running on").
    logger.info("Earmark starting on http://%s:%d (live socket /v1/listen): loading models",
                settings.host, settings.port)
    from earmark.api.http_protocol import frame_limit_ws_protocol, header_timeout_protocol

    _raise_descriptor_limit()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=header_timeout_protocol(settings.header_timeout_s),
        # Frames over the limit get an Error before the 1009 close (the app never sees them).
        ws=frame_limit_ws_protocol(),
        ws_max_size=settings.max_frame_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    redact.install()  # after uvicorn set up its loggers
    _graceful_server_class()(config, app).run()
    return 0


def _raise_descriptor_limit() -> None:
    """Soft descriptor limit up to the hard one: every socket, WebRTC peer and pull holds
    descriptors, and the common soft default of 1,024 is reached long before the CPU is."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return
        logger.info("descriptor limit raised from %d to %d", soft, target)


def _graceful_server_class():  # noqa: ANN202 - uvicorn is imported lazily
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """On SIGTERM/SIGINT, live sessions get their last finals before uvicorn closes the
        sockets (it would otherwise fail them with 1012 at once)."""

        def __init__(self, config: uvicorn.Config, app: Any) -> None:
            super().__init__(config)
            self.app = app

        async def shutdown(self, sockets: Any = None) -> None:
            # uvicorn's order: stop listening first, then let the open sessions finish.
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            found = getattr(self.app.state, "services", None)  # None: startup failed
            left = await found.sessions.drain(DRAIN_TIMEOUT_S) if found is not None else 0
            if left:
                logger.warning("%d live sessions did not finish within %d s", left,
                               DRAIN_TIMEOUT_S)
            await super().shutdown(sockets)

    return GracefulServer
