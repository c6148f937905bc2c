"""Admin API commands of the `softswitch` CLI: logins and tokens, straight in the database.

    softswitch admin create NAME --role operator [--tenant T ...] [--site S] [--extension E]
                                 [--password-stdin | --no-password] [--totp]
    softswitch admin list [--json]
    softswitch admin delete NAME
    softswitch token create LOGIN [--description TEXT] [--expires-in DAYS]
    softswitch token list [LOGIN]
    softswitch token revoke ID

They bootstrap the first operator (and serve when the API is down). A token's secret is
printed once; only its hash is stored. Exit status: 0 done, 1 refused, 2 bad
configuration, 3 database failure.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from config import SwitchConfig
from softswitch.cli_common import CommandError, guarded, load_checked_config, with_store
from storage import Store

__all__ = ["add_admin_commands"]

ROLES = ("operator", "reseller", "office_manager", "site_manager", "supervisor", "user")


def _config(args: argparse.Namespace) -> SwitchConfig:
    return load_checked_config(args.config, args.database)


def _password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("the passwords differ")
    return first


def _cmd_admin_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from softswitch.api.errors import ApiError
    from softswitch.api.routes_logins import LoginIn, create_login

    config = _config(args)
    try:
        body = LoginIn(
            name=args.name,
            role=args.role,
            password=_password(args),
            tenants=args.tenant or [],
            site=args.site,
            extension=args.extension,
            totp=args.totp,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "login"
        raise CommandError(f"{where}: {first['msg']}") from None
    tenants = {t.name: t for t in config.tenants}

    async def work(store: Store) -> Any:
        return await create_login(store, tenants, body, None)

    try:
        created = with_store(config, work)
    except ApiError as exc:
        raise CommandError(exc.message) from None
    scope = ", ".join(created.tenants) or "every tenant"
    print(f"login {created.name} created: {created.role} ({scope})")
    if created.totp_uri:
        print(f"TOTP secret (shown once): {created.totp_secret}")
        print(f"authenticator URI: {created.totp_uri}")
    if body.password is None:
        print(f"no password: create a token with `softswitch token create {created.name}`")
    return 0


def _cmd_admin_list(args: argparse.Namespace) -> int:
    logins = with_store(_config(args), lambda store: store.load_api_logins())
    rows = [
        {
            "name": x.name,
            "role": x.role,
            "tenants": x.tenants,
            "site": x.site,
            "extension": x.extension,
            "enabled": x.enabled,
            "totp": x.totp_secret is not None,
        }
        for x in logins
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        scope = ", ".join(row["tenants"]) or "*"  # type: ignore[arg-type]
        state = "" if row["enabled"] else " (disabled)"
        print(f"{row['name']:<24} {row['role']:<15} {scope}{state}")
    print(f"{len(rows)} logins")
    return 0


def _cmd_admin_delete(args: argparse.Namespace) -> int:
    if not with_store(_config(args), lambda store: store.delete_api_login(args.name)):
        raise CommandError(f"no login {args.name!r}")
    print(f"login {args.name} and its tokens deleted")
    return 0


def _cmd_token_create(args: argparse.Namespace) -> int:
    from softswitch.api.routes_logins import issue_token

    lifetime = args.expires_in * 86400 if args.expires_in else None

    async def work(store: Store) -> Any:
        if await store.load_api_login(args.login) is None:
            raise CommandError(f"no login {args.login!r}: create it with `softswitch admin create`")
        return await issue_token(store, args.login, "api", args.description, lifetime)

    created = with_store(_config(args), work)
    print(created.token)
    expiry = (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created.expires_at))
        if created.expires_at
        else "never"
    )
    print(
        f"token {created.id} of {created.login} (expires {expiry}); shown once: keep it",
        file=sys.stderr,
    )
    return 0


def _cmd_token_list(args: argparse.Namespace) -> int:
    tokens = with_store(_config(args), lambda store: store.load_api_tokens(args.login))
    now = time.time()
    for t in tokens:
        state = (
            "revoked"
            if t.revoked_at is not None
            else "expired"
            if t.expires_at is not None and t.expires_at <= now
            else "valid"
        )
        print(f"{t.id}  {t.login:<24} {t.kind:<8} {state:<8} {t.description}")
    print(f"{len(tokens)} tokens")
    return 0


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    done = with_store(_config(args), lambda store: store.revoke_api_token(args.id, time.time()))
    if not done:
        raise CommandError(f"no valid token {args.id!r}")
    print(f"token {args.id} revoked")
    return 0


def _days(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of days, 1-3650")
    return int(text)


def add_admin_commands(sub: Any, default_config: str) -> None:
    """Add `admin` and `token` to the `softswitch` sub-command parser."""

    def common(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--config", default=default_config, help="configuration file (TOML)")
        cmd.add_argument("--database", help="database URL (overrides the configuration)")

    admin = sub.add_parser("admin", help="admin API logins")
    asub = admin.add_subparsers(dest="action", required=True)
    create = asub.add_parser("create", help="create a login")
    create.add_argument("name", help="login name")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--tenant", action="append", help="tenant in scope (repeat for a reseller's customers)"
    )
    create.add_argument("--site", help="a site manager's site")
    create.add_argument("--extension", help="a basic user's extension")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    secret.add_argument("--no-password", action="store_true", help="a machine account: tokens only")
    create.add_argument("--totp", action="store_true", help="require a TOTP code at login")
    common(create)
    create.set_defaults(func=guarded(_cmd_admin_create))
    listing = asub.add_parser("list", help="list logins")
    listing.add_argument("--json", action="store_true", help="print JSON")
    common(listing)
    listing.set_defaults(func=guarded(_cmd_admin_list))
    delete = asub.add_parser("delete", help="delete a login and its tokens")
    delete.add_argument("name")
    common(delete)
    delete.set_defaults(func=guarded(_cmd_admin_delete))

    token = sub.add_parser("token", help="admin API tokens")
    tsub = token.add_subparsers(dest="action", required=True)
    tcreate = tsub.add_parser("create", help="create a token (printed once)")
    tcreate.add_argument("login", help="the login the token acts as")
    tcreate.add_argument("--description", default="", help="what it is for")
    tcreate.add_argument("--expires-in", type=_days, metavar="DAYS", help="default: never")
    common(tcreate)
    tcreate.set_defaults(func=guarded(_cmd_token_create))
    tlist = tsub.add_parser("list", help="list tokens (never their secrets)")
    tlist.add_argument("login", nargs="?", help="only this login's")
    common(tlist)
    tlist.set_defaults(func=guarded(_cmd_token_list))
    revoke = tsub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id", help="the token's id (token list)")
    common(revoke)
    revoke.set_defaults(func=guarded(_cmd_token_revoke))
