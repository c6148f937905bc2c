"""A mailbox's voice messages: the list, a message's audio (a WAV the browser's audio
element plays) and moving a message between folders (``deleted`` is the guides' delete:
undone until the mailbox is purged). A basic user reaches only their own mailbox.

    GET  /v1/tenants/{tenant}/mailboxes/{extension}/messages              newest first
    GET  /v1/tenants/{tenant}/mailboxes/{extension}/messages/{id}/audio   audio/wav
    POST /v1/tenants/{tenant}/mailboxes/{extension}/messages/{id}/move    {"folder": ...}

The messages are the running switch's (``switch.voicemail``): these endpoints run on its
loop.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel

from softswitch.api.deps import TenantScope, scoped
from softswitch.api.errors import COMMON_ERRORS, not_found
from softswitch.api.roles import Area
from softswitch.voicemail.events import MailboxAddress
from storage.voicemail import StoredMessage

__all__ = ["MoveIn", "VoiceMessageOut", "message_audio", "messages", "move_message", "router"]

router = APIRouter(
    prefix="/v1/tenants/{tenant}/mailboxes/{extension}/messages",
    responses=COMMON_ERRORS,
    tags=["voicemail"],
)

Extension = Annotated[str, Path(max_length=8, description="the mailbox's extension")]
MessageId = Annotated[str, Path(max_length=128)]
Folder = Literal["new", "saved", "deleted"]


class VoiceMessageOut(BaseModel):
    id: str
    folder: str
    caller_number: str
    caller_name: str
    received: float
    duration: float
    urgent: bool


def _box(scope: TenantScope, extension: str) -> MailboxAddress:
    box = (
        scope.ctx.switch.voicemail.box(scope.tenant.name, extension)
        if scope.sees_extension(extension)
        else None
    )
    if box is None:
        raise not_found(f"mailbox {extension!r}")
    return box.address


def _message(scope: TenantScope, extension: str, message_id: str) -> StoredMessage:
    found = scope.ctx.switch.voicemail.message(_box(scope, extension), message_id)
    if found is None:
        raise not_found(f"message {message_id!r}")
    return found


@router.get("", response_model=list[VoiceMessageOut])
async def messages(
    extension: Extension,
    scope: Annotated[TenantScope, Depends(scoped(Area.VOICEMAIL, "r"))],
    folder: Annotated[list[Folder] | None, Query(description="default: new and saved")] = None,
) -> list[VoiceMessageOut]:
    """The mailbox's messages in ``folder`` (new and saved by default), newest first."""
    wanted = folder or ["new", "saved"]
    found = scope.ctx.switch.voicemail.messages(_box(scope, extension), *wanted)
    return [
        VoiceMessageOut(
            id=m.id,
            folder=m.folder,
            caller_number=m.caller_number,
            caller_name=m.caller_name,
            received=m.received,
            duration=m.duration,
            urgent=m.urgent,
        )
        for m in reversed(found)
    ]


@router.get("/{message_id}/audio", response_class=FileResponse)
async def message_audio(
    extension: Extension,
    message_id: MessageId,
    scope: Annotated[TenantScope, Depends(scoped(Area.VOICEMAIL, "r"))],
) -> FileResponse:
    """The message's recording as WAV."""
    found = _message(scope, extension, message_id)
    path = scope.ctx.switch.voicemail.audio_path(found)
    if not path.is_file():
        raise not_found(f"audio of message {message_id!r}")
    return FileResponse(path, media_type="audio/wav", filename=f"{message_id}.wav")


class MoveIn(BaseModel):
    folder: Folder


@router.post("/{message_id}/move", response_model=VoiceMessageOut)
async def move_message(
    extension: Extension,
    message_id: MessageId,
    body: MoveIn,
    scope: Annotated[TenantScope, Depends(scoped(Area.VOICEMAIL, "u"))],
) -> VoiceMessageOut:
    """Put a message in another folder (``deleted``: gone from the lists, kept until the
    mailbox is purged)."""
    found = _message(scope, extension, message_id)
    await scope.ctx.switch.voicemail.move(_box(scope, extension), message_id, body.folder)
    return VoiceMessageOut(
        id=found.id,
        folder=body.folder,
        caller_number=found.caller_number,
        caller_name=found.caller_name,
        received=found.received,
        duration=found.duration,
        urgent=found.urgent,
    )
