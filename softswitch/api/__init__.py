"""The admin REST API (FastAPI): ``/v1/...``, the ``/v1/events`` WebSocket and ``/metrics``.

Served where ``[api]`` says from a process of its own (``process.ApiProcess`` starts
``child``), or on the switch's loop with an in-memory Store (``server.ApiServer``). The
layers: the API reads the configuration, the Store, provisioning and mailboxes through the
narrow ``context.SwitchView`` and the live switch through ``live.Live`` (over the control
channel, ``control`` and ``channel``, from its own process); nothing below imports it.

The frame, for every resource router (provisioning's tenants, users, numbers... too):

- **Auth**: ``deps.authenticate`` turns ``Authorization: Bearer <token>`` into a
  ``principal.Principal`` (login, role, scope, permissions) or answers 401.
- **Scope and permission**: ``deps.scoped(Area.X, "r"|"c"|"u"|"d")`` on a
  ``/v1/tenants/{tenant}/...`` path gives a ``TenantScope``: 404 when the caller does not
  see the tenant, then 403 when its role/permissions do not allow the action on the area.
  Objects below the tenant are looked up within it (and within ``scope.extensions`` for
  site managers and basic users): another tenant's object is 404, never 403.
  ``deps.allowed(area, action)`` is the same without a tenant. Roles and areas:
  ``roles.py`` (add an area there for a new kind of object).
- **Errors**: raise ``errors.ApiError(status, code, message, field=...)``; every error
  answer is an ``errors.ErrorBody`` (validation errors name each field, ``body.role``).
  Add ``responses=errors.COMMON_ERRORS`` to a router so the OpenAPI document says so.
- **Lists**: ``paging.Page[Item]`` (``{total, items, next_cursor}``) with the
  ``paging.Cursor`` and ``paging.Limit`` query parameters; ``paging.page_of`` for sorted
  in-memory lists, or a keyset cursor (``encode_cursor``) for store queries.
- **ETags**: ``etag.with_etag(response, etag.etag_of(obj))`` on GET and after a change;
  ``etag.check_if_match(request, current)`` before a change (412 on mismatch).
- **Events**: ``ctx.events.publish(events.config_changed(tenant, kind, name, ...))`` after
  a configuration change; live state changes are sampled (see ``events``).

A new resource is a module with an ``APIRouter`` added to ``app.ROUTERS``.
"""

from __future__ import annotations

from softswitch.api.server import ApiServer, start_api

__all__ = ["ApiServer", "start_api"]
