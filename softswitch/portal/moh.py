"""Music on hold of a tenant (guide 002): upload WAV files to the tenant's library, then
choose which are songs (in which order), the introduction and the messages, how often a
message plays, and whether the songs are shuffled for every hold.

The playlist is the tenant document's ``moh`` (config.moh.MusicOnHold), saved through the
API's provisioning service (who may change the tenant may change it; others read it) and
applied live. Uploaded files go to ``<prompts directory>/moh/<tenant>/`` and are checked as
the configuration checks them (16-bit PCM WAV) before they are kept.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from config.audio import check_playable
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError, not_found
from softswitch.api.provisioning import actor, applied, service
from softswitch.api.roles import Area
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession
from softswitch.provisioning import InvalidObject, ProvisioningError

__all__ = ["library", "router"]

router = APIRouter(include_in_schema=False)

ROLES = ("song", "intro", "message", "unused")
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def library(scope: TenantScope) -> Path:
    """The tenant's folder of music-on-hold files."""
    prompts = Path(scope.ctx.switch.config.prompts.directory)
    return (prompts / "moh" / scope.tenant.name).resolve()


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav")) if folder.is_dir() else []


async def _page(
    request: Request,
    session: PortalSession,
    tenant: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    scope = await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    item = await service(scope).get("tenant", scope.tenant.name, scope.tenant.name)
    moh: dict[str, Any] = item.data.get("moh") or {}
    folder = library(scope)
    songs = [str(Path(p).resolve()) for p in moh.get("songs", [])]
    messages = [str(Path(p).resolve()) for p in moh.get("messages", [])]
    intro = str(Path(moh["intro"]).resolve()) if moh.get("intro") else None
    rows = []
    for n, path in enumerate(_files(folder)):
        text = str(path)
        role, order = "unused", 0
        if text in songs:
            role, order = "song", songs.index(text) + 1
        elif text == intro:
            role = "intro"
        elif text in messages:
            role, order = "message", messages.index(text) + 1
        rows.append({"n": n, "name": path.name, "role": role, "order": order})
    playlist = [*songs, *messages, *([intro] if intro else [])]
    outside = [p for p in playlist if Path(p).parent != folder]
    return render(
        request,
        session,
        "moh.html",
        tenant,
        status,
        rows=rows,
        outside=outside,
        moh=moh,
        roles=ROLES,
        may_change=session.principal.may(Area.TENANTS, "u"),
        errors=errors or {},
        saved=request.query_params.get("saved") == "1",
        max_upload_mb=scope.ctx.switch.config.prompts.max_upload_mb,
    )


@router.get("/t/{tenant}/music-on-hold", response_class=HTMLResponse)
async def music_on_hold(request: Request, tenant: str) -> HTMLResponse:
    return await _page(request, await signed_in(request), tenant)


@router.post("/t/{tenant}/music-on-hold/upload", response_model=None)
async def upload(
    request: Request,
    tenant: str,
    audio: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A WAV file into the tenant's library, kept only when it plays (16-bit PCM)."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.TENANTS, "u")
    limit = scope.ctx.switch.config.prompts.max_upload_mb * 1024 * 1024
    stem = _NAME.sub("-", Path(audio.filename or "").stem).strip("-.")[:60]
    if not stem:
        return await _page(request, session, tenant, 422, {"audio": "choose a WAV file"})
    data = await audio.read(limit + 1)
    if len(data) > limit:
        message = f"larger than {limit // (1024 * 1024)} MB"
        return await _page(request, session, tenant, 422, {"audio": message})
    folder = library(scope)
    folder.mkdir(parents=True, exist_ok=True)
    trial = folder / f".upload-{secrets.token_hex(6)}.tmp"
    trial.write_bytes(data)
    try:
        check_playable(trial)
    except ValueError as exc:
        trial.unlink(missing_ok=True)
        message = str(exc).replace(str(trial), audio.filename or "the file")
        return await _page(request, session, tenant, 422, {"audio": message})
    trial.replace(folder / f"{stem}.wav")
    return RedirectResponse(f"/t/{tenant}/music-on-hold?saved=1", status_code=303)


@router.post("/t/{tenant}/music-on-hold", response_model=None)
async def save(request: Request, tenant: str) -> Response:
    """The playlist from the form: each file's role and order, randomise, the interval."""
    session = await signed_in(request)
    form = await request.form()
    check_csrf(session, request, str(form.get("csrf", "")))
    scope = await tenant_scope(request, session, tenant, Area.TENANTS, "u")
    files = _files(library(scope))
    errors: dict[str, str] = {}
    chosen: dict[str, list[tuple[int, str]]] = {r: [] for r in ROLES}
    for n, path in enumerate(files):
        role = str(form.get(f"role-{n}", "unused"))
        if role not in ROLES:
            errors[f"role-{n}"] = f"one of {', '.join(ROLES)}"
            continue
        try:
            order = int(str(form.get(f"order-{n}", "0")) or 0)
        except ValueError:
            errors[f"order-{n}"] = "a whole number"
            continue
        chosen[role].append((order, str(path)))
    if len(chosen["intro"]) > 1:
        errors["intro"] = "one introduction at most"
    if not chosen["song"] and (chosen["intro"] or chosen["message"]):
        errors["songs"] = "choose at least one song"
    try:
        interval = int(str(form.get("message_interval", "30")))
        if not 15 <= interval <= 120:
            raise ValueError
    except ValueError:
        errors["message_interval"] = "seconds between messages: 15 to 120"
        interval = 30
    if errors:
        return await _page(request, session, tenant, 422, errors)
    moh: dict[str, Any] | None = None
    if chosen["song"]:
        moh = {
            "songs": [p for _, p in sorted(chosen["song"])],
            "messages": [p for _, p in sorted(chosen["message"])],
            "message_interval": interval,
            "randomise": form.get("randomise") == "1",
        }
        if chosen["intro"]:
            moh["intro"] = chosen["intro"][0][1]
    svc = service(scope)
    current = await svc.get("tenant", scope.tenant.name, scope.tenant.name)
    data = {k: v for k, v in current.data.items() if k != "moh"}
    if moh is not None:
        data["moh"] = moh
    try:
        item = await svc.update(
            actor(scope.principal, request),
            "tenant",
            scope.tenant.name,
            scope.tenant.name,
            data,
            expected_version=current.version,
        )
    except InvalidObject as exc:
        message = "; ".join(e.message for e in exc.errors[:3])
        return await _page(request, session, tenant, 422, {"songs": message})
    except ProvisioningError as exc:
        raise ApiError(409, "refused", str(exc)) from None
    await applied(scope, "tenant", item.key, "update", item.version)
    return RedirectResponse(f"/t/{tenant}/music-on-hold?saved=1", status_code=303)


@router.get("/t/{tenant}/music-on-hold/files/{name}", response_model=None)
async def play(request: Request, tenant: str, name: str) -> Response:
    """A file of the library, to listen to in the page."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.TENANTS, "r")
    found = next((p for p in _files(library(scope)) if p.name == name), None)
    if found is None:
        raise not_found(f"music-on-hold file {name!r}")
    return FileResponse(found, media_type="audio/wav")
