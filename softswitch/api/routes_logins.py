"""Logins, sessions and tokens: ``POST /v1/login``, ``/v1/me``, ``/v1/admins`` and tokens.

A login may manage logins of lower roles within its own scope (an operator: everyone).
Logins it may not manage do not exist for it (404).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from config.models import Tenant
from softswitch.api.context import ApiContext
from softswitch.api.deps import allowed, authenticate, context
from softswitch.api.errors import COMMON_ERRORS, ApiError, ErrorBody, not_found
from softswitch.api.etag import check_if_match, etag_of, with_etag
from softswitch.api.paging import DEFAULT_LIMIT, Cursor, Limit, Page, page_of
from softswitch.api.principal import Principal
from softswitch.api.roles import Area, Role, check_permissions
from softswitch.api.security import (
    hash_password,
    new_token,
    new_totp_secret,
    totp_uri,
    verify_password,
    verify_totp,
)
from storage.base import Store
from storage.logins import ApiLogin, ApiToken

__all__ = ["LoginIn", "LoginOut", "create_login", "issue_token", "router", "validate_scope"]

router = APIRouter(tags=["logins"], responses=COMMON_ERRORS)

LoginName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")]
RoleName = Literal["operator", "reseller", "office_manager", "site_manager", "supervisor", "user"]
MAX_TOKEN_LIFETIME = 5 * 365 * 86_400


class LoginIn(BaseModel):
    name: LoginName
    role: RoleName
    password: str | None = Field(default=None, min_length=8, max_length=256)
    tenants: list[str] = Field(default_factory=list, max_length=1000)
    site: str | None = Field(default=None, max_length=64)
    extension: str | None = Field(default=None, max_length=32)
    permissions: dict[str, str] = Field(default_factory=dict)
    totp: bool = Field(default=False, description="require a TOTP code at login")
    enabled: bool = True


class LoginPatch(BaseModel):
    role: RoleName | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)
    tenants: list[str] | None = Field(default=None, max_length=1000)
    site: str | None = Field(default=None, max_length=64)
    extension: str | None = Field(default=None, max_length=32)
    permissions: dict[str, str] | None = None
    totp: bool | None = None
    enabled: bool | None = None


class LoginOut(BaseModel):
    name: str
    role: str
    tenants: list[str]
    site: str | None
    extension: str | None
    permissions: dict[str, str]
    totp: bool
    enabled: bool
    created_at: float
    updated_at: float


class LoginCreated(LoginOut):
    totp_secret: str | None = Field(
        default=None, description="shown once: the TOTP secret for an authenticator app"
    )
    totp_uri: str | None = None


class Credentials(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=256)
    totp_code: str | None = Field(default=None, max_length=12)


class Session(BaseModel):
    token: str = Field(description="bearer token; send as 'Authorization: Bearer ...'")
    expires_at: float | None
    login: LoginOut


class TokenIn(BaseModel):
    description: str = Field(default="", max_length=200)
    expires_in: int | None = Field(
        default=None, ge=60, le=MAX_TOKEN_LIFETIME, description="seconds; none: no expiry"
    )


class TokenOut(BaseModel):
    id: str
    login: str
    kind: str
    description: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its hash is kept")


def login_out(login: ApiLogin) -> LoginOut:
    return LoginOut(
        name=login.name,
        role=login.role,
        tenants=login.tenants,
        site=login.site,
        extension=login.extension,
        permissions=login.permissions,
        totp=login.totp_secret is not None,
        enabled=login.enabled,
        created_at=login.created_at,
        updated_at=login.updated_at,
    )


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        login=token.login,
        kind=token.kind,
        description=token.description,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", field=field)


def validate_scope(tenants: dict[str, Tenant], login: ApiLogin) -> None:
    """A login's scope must fit its role and name tenants and extensions that exist.
    Raises ApiError (422) naming the field."""
    role = Role(login.role)
    for i, name in enumerate(login.tenants):
        if name not in tenants:
            raise _invalid(f"body.tenants.{i}", f"no tenant {name!r}")
    if len(set(login.tenants)) != len(login.tenants):
        raise _invalid("body.tenants", "names a tenant twice")
    if role is Role.OPERATOR and login.tenants:
        raise _invalid("body.tenants", "an operator reaches every tenant: leave it empty")
    if role is Role.RESELLER and not login.tenants:
        raise _invalid("body.tenants", "a reseller needs its customers' tenants")
    single = (Role.OFFICE_MANAGER, Role.SITE_MANAGER, Role.SUPERVISOR, Role.USER)
    if role in single and len(login.tenants) != 1:
        raise _invalid("body.tenants", f"a {role.value} belongs to exactly one tenant")
    if role is Role.SITE_MANAGER and not login.site:
        raise _invalid("body.site", "a site manager needs its site")
    if role is not Role.SITE_MANAGER and login.site is not None:
        raise _invalid("body.site", "only a site manager has a site")
    if role is Role.SITE_MANAGER:
        tenant = tenants[login.tenants[0]]
        if all(site.name != login.site for site in tenant.sites):
            raise _invalid("body.site", f"no site {login.site!r} in {tenant.name}")
    if role is Role.USER:
        tenant = tenants[login.tenants[0]]
        if not login.extension or tenant.user_by_extension(login.extension) is None:
            raise _invalid("body.extension", f"no extension {login.extension!r} in {tenant.name}")
    elif login.extension is not None:
        raise _invalid("body.extension", "only a basic user has an extension")
    try:
        login.permissions = check_permissions(role, login.permissions)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"body.{exc}", field="body.permissions") from None


def _manages(principal: Principal, login: ApiLogin) -> bool:
    """May ``principal`` see and manage ``login`` (besides its own)?"""
    if principal.role is Role.OPERATOR:
        return True
    return (
        bool(login.tenants)
        and set(login.tenants) <= principal.tenants
        and principal.outranks(Role(login.role))
    )


async def _visible(ctx: ApiContext, principal: Principal, name: str) -> ApiLogin:
    login = await ctx.store.load_api_login(name)
    if login is None or not (login.name == principal.login or _manages(principal, login)):
        raise not_found(f"login {name!r}")
    return login


async def create_login(
    store: Store, tenants: dict[str, Tenant], body: LoginIn, by: Principal | None
) -> LoginCreated:
    """Validate and store a new login (``by`` None: the command line, no scope limits)."""
    now = time.time()
    login = ApiLogin(
        name=body.name,
        role=body.role,
        tenants=list(body.tenants),
        site=body.site,
        extension=body.extension,
        permissions=dict(body.permissions),
        password_hash=hash_password(body.password) if body.password else None,
        totp_secret=new_totp_secret() if body.totp else None,
        enabled=body.enabled,
        created_at=now,
        updated_at=now,
    )
    validate_scope(tenants, login)
    if body.totp and not body.password:
        raise _invalid("body.totp", "a TOTP second factor needs a password")
    if by is not None and not _manages(by, login):
        raise ApiError(403, "forbidden", "not permitted: create a login of that role or scope")
    if await store.load_api_login(login.name) is not None:
        raise ApiError(409, "conflict", f"login {login.name!r} exists already")
    await store.create_api_login(login)
    out = login_out(login)
    secret = login.totp_secret
    return LoginCreated(
        **out.model_dump(),
        totp_secret=secret,
        totp_uri=totp_uri(secret, login.name) if secret else None,
    )


async def issue_token(
    store: Store, login: str, kind: str, description: str, lifetime: float | None
) -> TokenCreated:
    """Make and store a token of ``login``; the answer holds its secret (shown once)."""
    now = time.time()
    made = new_token()
    token = ApiToken(
        id=made.id,
        login=login,
        secret_hash=made.secret_hash,
        kind=kind,
        description=description,
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
    )
    await store.create_api_token(token)
    return TokenCreated(**token_out(token).model_dump(), token=made.text)


@router.post(
    "/v1/login",
    response_model=Session,
    responses={429: {"model": ErrorBody, "description": "too many failed logins"}},
)
async def login(request: Request, credentials: Credentials) -> Session:
    """Exchange a name and password (and TOTP code) for a session token."""
    ctx = context(request)
    settings = ctx.settings
    source = request.client.host if request.client is not None else "unknown"
    now = time.time()
    since = now - settings.login_failure_window
    store = ctx.store
    if (
        await store.count_login_failures(since, login=credentials.name)
        >= settings.max_login_failures
        or await store.count_login_failures(since, source=source) >= 4 * settings.max_login_failures
    ):
        raise ApiError(
            429,
            "too_many_failures",
            "too many failed logins; try again later",
            headers={"Retry-After": str(int(settings.login_failure_window))},
        )
    found = await store.load_api_login(credentials.name)
    ok = verify_password(found.password_hash if found else None, credentials.password)
    if ok and found is not None and found.totp_secret is not None:
        ok = verify_totp(found.totp_secret, credentials.totp_code)
    if not ok or found is None or not found.enabled:
        await store.record_login_failure(credentials.name, source, now)
        raise ApiError(401, "unauthorized", "wrong name, password or code")
    await store.clear_login_failures(found.name)
    await store.purge_api_tokens(now - 86_400)  # sessions over for a day: forgotten
    token = await issue_token(store, found.name, "session", "login", settings.session_lifetime)
    return Session(token=token.token, expires_at=token.expires_at, login=login_out(found))


@router.get("/v1/me", response_model=LoginOut)
async def me(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> LoginOut:
    """The caller's own login."""
    return login_out(await _visible(context(request), principal, principal.login))


@router.post("/v1/logout", status_code=204, response_class=Response)
async def logout(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Response:
    """Revoke the token this request was made with."""
    await context(request).store.revoke_api_token(principal.token_id, time.time())
    context(request).tokens.forget(principal.token_id)
    return Response(status_code=204)


@router.get("/v1/admins", response_model=Page[LoginOut])
async def list_logins(
    request: Request,
    principal: Annotated[Principal, Depends(allowed(Area.ADMINS, "r"))],
    role: RoleName | None = None,
    tenant: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[LoginOut]:
    """The logins the caller manages (and its own), by name."""
    logins = [
        login_out(x)
        for x in await context(request).store.load_api_logins()
        if (x.name == principal.login or _manages(principal, x))
        and (role is None or x.role == role)
        and (tenant is None or tenant in x.tenants)
    ]
    return page_of(logins, cursor, limit)


@router.post(
    "/v1/admins",
    response_model=LoginCreated,
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "the name is taken"}},
)
async def add_login(
    request: Request,
    response: Response,
    body: LoginIn,
    principal: Annotated[Principal, Depends(allowed(Area.ADMINS, "c"))],
) -> LoginCreated:
    """Create a login of a lower role within the caller's scope."""
    ctx = context(request)
    created = await create_login(ctx.store, ctx.tenants(), body, principal)
    with_etag(response, etag_of({"login": created.name, "version": 1}))
    return created


NamePath = Annotated[str, Path(max_length=64)]


@router.get("/v1/admins/{name}", response_model=LoginOut)
async def get_login(
    request: Request,
    response: Response,
    name: NamePath,
    principal: Annotated[Principal, Depends(authenticate)],
) -> LoginOut:
    login = await _visible(context(request), principal, name)
    if login.name != principal.login and not principal.may(Area.ADMINS, "r"):
        raise not_found(f"login {name!r}")
    with_etag(response, etag_of({"login": login.name, "version": login.version}))
    return login_out(login)


@router.patch(
    "/v1/admins/{name}",
    response_model=LoginCreated,
    responses={412: {"model": ErrorBody, "description": "If-Match does not match"}},
)
async def update_login(
    request: Request,
    response: Response,
    name: NamePath,
    patch: LoginPatch,
    principal: Annotated[Principal, Depends(authenticate)],
) -> LoginCreated:
    """Change a login (its own password and TOTP: anyone). If-Match: its ETag."""
    ctx = context(request)
    login = await _visible(ctx, principal, name)
    own = login.name == principal.login
    changes = patch.model_dump(exclude_unset=True)
    if own and set(changes) <= {"password", "totp"}:
        pass  # everyone may change their own password and second factor
    elif not principal.may(Area.ADMINS, "u") or own:
        raise ApiError(403, "forbidden", "not permitted: update logins")
    check_if_match(request, etag_of({"login": login.name, "version": login.version}))
    version = login.version
    for key in ("role", "tenants", "site", "extension", "permissions", "enabled"):
        if key in changes and changes[key] is not None:
            setattr(login, key, changes[key])
        elif key in ("site", "extension") and key in changes:
            setattr(login, key, None)
    if changes.get("password"):
        login.password_hash = hash_password(changes["password"])
    secret = None
    if changes.get("totp") is True and login.totp_secret is None:
        if login.password_hash is None:
            raise _invalid("body.totp", "a TOTP second factor needs a password")
        secret = login.totp_secret = new_totp_secret()
    elif changes.get("totp") is False:
        login.totp_secret = None
    validate_scope(ctx.tenants(), login)
    if not own and not _manages(principal, login):
        raise ApiError(403, "forbidden", "not permitted: that role or scope")
    login.updated_at = time.time()
    updated = await ctx.store.update_api_login(login, version)
    ctx.tokens.forget()  # its role, scope or state may have changed
    if updated is None:
        raise ApiError(412, "precondition_failed", "the login changed meanwhile; read it again")
    with_etag(response, etag_of({"login": updated.name, "version": updated.version}))
    return LoginCreated(
        **login_out(updated).model_dump(),
        totp_secret=secret,
        totp_uri=totp_uri(secret, updated.name) if secret else None,
    )


@router.delete(
    "/v1/admins/{name}",
    status_code=204,
    response_class=Response,
    responses={412: {"model": ErrorBody, "description": "If-Match does not match"}},
)
async def delete_login(
    request: Request,
    name: NamePath,
    principal: Annotated[Principal, Depends(allowed(Area.ADMINS, "d"))],
) -> Response:
    ctx = context(request)
    login = await _visible(ctx, principal, name)
    if login.name == principal.login:
        raise ApiError(403, "forbidden", "a login cannot delete itself")
    check_if_match(request, etag_of({"login": login.name, "version": login.version}))
    await ctx.store.delete_api_login(login.name)
    ctx.tokens.forget()
    return Response(status_code=204)


@router.get("/v1/admins/{name}/tokens", response_model=Page[TokenOut])
async def list_tokens(
    request: Request,
    name: NamePath,
    principal: Annotated[Principal, Depends(authenticate)],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TokenOut]:
    """A login's tokens (never their secrets)."""
    ctx = context(request)
    login = await _visible(ctx, principal, name)
    if login.name != principal.login and not principal.may(Area.ADMINS, "r"):
        raise not_found(f"login {name!r}")
    tokens = [token_out(t) for t in await ctx.store.load_api_tokens(login.name)]
    return page_of(tokens, cursor, limit)


@router.post("/v1/admins/{name}/tokens", response_model=TokenCreated, status_code=201)
async def add_token(
    request: Request,
    name: NamePath,
    principal: Annotated[Principal, Depends(authenticate)],
    body: Annotated[TokenIn, Body()] = TokenIn(),  # noqa: B008 - an immutable default
) -> TokenCreated:
    """A token for a machine acting as this login: the secret is in this answer only."""
    ctx = context(request)
    login = await _visible(ctx, principal, name)
    if login.name != principal.login and not principal.may(Area.ADMINS, "c"):
        raise ApiError(403, "forbidden", "not permitted: create admins")
    return await issue_token(ctx.store, login.name, "api", body.description, body.expires_in)


@router.delete("/v1/tokens/{token_id}", status_code=204, response_class=Response)
async def revoke_token(
    request: Request,
    token_id: Annotated[str, Path(max_length=32)],
    principal: Annotated[Principal, Depends(authenticate)],
) -> Response:
    """Revoke a token: its own login's, or one of a login the caller manages."""
    ctx = context(request)
    token = await ctx.store.load_api_token(token_id)
    if token is None:
        raise not_found(f"token {token_id!r}")
    owner = await ctx.store.load_api_login(token.login)
    if owner is None or not (
        owner.name == principal.login
        or (_manages(principal, owner) and principal.may(Area.ADMINS, "d"))
    ):
        raise not_found(f"token {token_id!r}")
    await ctx.store.revoke_api_token(token.id, time.time())
    ctx.tokens.forget(token.id)
    return Response(status_code=204)
