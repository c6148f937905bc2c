"""FastAPI dependencies: who is calling (bearer token), and may they touch this tenant.

Order of checks, so nothing leaks: no valid token -> 401; a tenant the caller may not
see (or that does not exist) -> 404; a tenant it sees but an area or action its role or
permissions do not allow -> 403.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, WebSocket

from config.models import Tenant
from softswitch.api.context import ApiContext
from softswitch.api.errors import ApiError, not_found
from softswitch.api.principal import Principal
from softswitch.api.roles import Area
from softswitch.api.security import hash_secret, parse_token, verify_secret

__all__ = [
    "TenantName",
    "TenantScope",
    "allowed",
    "authenticate",
    "context",
    "principal_from_token",
    "scoped",
]

TenantName = Annotated[str, Path(description="the tenant's name", max_length=64)]


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def principal_from_token(ctx: ApiContext, text: str | None) -> Principal | None:
    """The principal a token string stands for, or None (unknown, revoked, expired, its
    login disabled or gone). Verified tokens are kept a few seconds (`ctx.tokens`,
    softswitch.api.tokencache: the bound on a revocation made outside this API)."""
    parsed = parse_token(text) if text else None
    if parsed is None:
        return None
    token_id, secret = parsed
    secret_hash = hash_secret(secret)
    cached = ctx.tokens.get(token_id, secret_hash)
    if cached is not None:
        return cached
    token = await ctx.store.load_api_token(token_id)
    if token is None or not verify_secret(token.secret_hash, secret):
        return None
    now = time.time()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    login = await ctx.store.load_api_login(token.login)
    if login is None or not login.enabled:
        return None
    principal = Principal.of(login, token.id)
    expires_in = token.expires_at - now if token.expires_at is not None else None
    ctx.tokens.put(token_id, secret_hash, principal, expires_in)
    return principal


def bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


async def authenticate(request: Request) -> Principal:
    principal = await principal_from_token(
        context(request), bearer(request.headers.get("authorization"))
    )
    if principal is None:
        raise _unauthorized()
    return principal


async def authenticate_websocket(websocket: WebSocket) -> Principal | None:
    """WebSocket clients send the token as a header or, from browsers, ``?token=``."""
    ctx: ApiContext = websocket.app.state.ctx
    text = bearer(websocket.headers.get("authorization")) or websocket.query_params.get("token")
    return await principal_from_token(ctx, text)


def allowed(area: Area, action: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, when its role and permissions allow ``action`` on ``area``."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.may(area, action):
            raise ApiError(403, "forbidden", f"not permitted: {_WORDS[action]} {area.value}")
        return principal

    return check


_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete"}


@dataclass(frozen=True, slots=True)
class TenantScope:
    """A request on one tenant's objects, by a caller allowed to make it."""

    ctx: ApiContext
    principal: Principal
    tenant: Tenant

    @property
    def extensions(self) -> frozenset[str] | None:
        """The extensions whose objects the caller may see, None for all."""
        return self.principal.extensions(self.tenant)

    def sees_extension(self, *extensions: str) -> bool:
        """True when the caller may see an object involving any of ``extensions``."""
        allowed = self.extensions
        return allowed is None or any(e in allowed for e in extensions)


def scoped(area: Area, action: str) -> Callable[..., Awaitable[TenantScope]]:
    """A dependency for ``/v1/tenants/{tenant}/...`` endpoints: 404 for a tenant the caller
    does not see, then 403 when the area or action is not allowed."""

    async def check(
        request: Request,
        tenant: TenantName,
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> TenantScope:
        ctx = context(request)
        found = ctx.tenant(tenant) if principal.sees_tenant(tenant) else None
        if found is None:
            raise not_found(f"tenant {tenant!r}")
        if not principal.may(area, action):
            raise ApiError(403, "forbidden", f"not permitted: {_WORDS[action]} {area.value}")
        return TenantScope(ctx, principal, found)

    return check
