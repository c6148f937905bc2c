"""Length-prefixed pickled messages between processes of one installation.

The switch talks to its media workers (`media.workerproto`) and to its admin-API process
(`softswitch.api.control`) over socket pairs it made itself, never a network peer: each
frame is a 4-byte big-endian length and a pickled message. This module is that framing,
shared by both: `frame` and `FrameDecoder` are sans-I/O; `Channel` drives them on asyncio.
Each protocol says which objects may arrive (`FrameDecoder`'s ``check``), so a frame
holding anything else ends the channel instead of reaching a handler.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Generic, TypeVar, cast

import structlog

__all__ = ["Channel", "FrameDecoder", "ProtocolError", "frame"]

log = structlog.get_logger(__name__)

M = TypeVar("M")

_LENGTH = struct.Struct("!I")


class ProtocolError(ValueError):
    """A frame on a control channel that cannot be a message."""


def frame(body: bytes, what: str, limit: int) -> bytes:
    """``body`` (a pickled ``what``) with its length in front; refuses one over ``limit``."""
    if len(body) > limit:
        raise ProtocolError(f"{what} message of {len(body)} bytes is too big")
    return _LENGTH.pack(len(body)) + body


class FrameDecoder(Generic[M]):
    """Reassembles messages from stream chunks (sans-I/O). ``check`` returns the unpickled
    object as a message, or raises ProtocolError for anything the protocol does not carry."""

    def __init__(self, check: Callable[[object], M], limit: int) -> None:
        self._check = check
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[M]:
        """The messages completed by ``data``; raises ProtocolError on a bad frame."""
        self._buffer += data
        buf = self._buffer
        messages: list[M] = []
        offset = 0
        while len(buf) - offset >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buf, offset)
            if length > self._limit:
                raise ProtocolError(f"frame of {length} bytes exceeds {self._limit}")
            end = offset + _LENGTH.size + length
            if len(buf) < end:
                break
            try:
                message = pickle.loads(buf[offset + _LENGTH.size : end])
            except Exception as exc:
                raise ProtocolError(f"undecodable frame of {length} bytes: {exc}") from None
            messages.append(self._check(message))
            offset = end
        del buf[:offset]
        return messages


class Channel(asyncio.Protocol, Generic[M]):
    """One end of a control socket: ``send`` buffers without waiting; each received
    message goes to ``on_message``; ``on_lost`` is called once when the other end is gone
    (EOF, a socket error or a bad frame). ``name`` says which channel in errors and logs."""

    def __init__(
        self,
        on_message: Callable[[M], None],
        on_lost: Callable[[str], None],
        *,
        decoder: FrameDecoder[M],
        encode: Callable[[M], bytes],
        name: str,
    ) -> None:
        self._on_message = on_message
        self._on_lost: Callable[[str], None] | None = on_lost
        self._decoder = decoder
        self._encode = encode
        self._name = name
        self._transport: asyncio.Transport | None = None

    @property
    def open(self) -> bool:
        """Whether messages can still be sent."""
        return self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, message: M) -> None:
        """Queue a message (in order); raises ConnectionError once the channel is closed."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError(f"the {self._name} channel is closed")
        self._transport.write(self._encode(message))

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._decoder.feed(data)
        except ProtocolError as exc:
            self._lose(str(exc))
            return
        for message in messages:
            try:
                self._on_message(message)
            except Exception:
                # one failing handler must not take the channel (and what rides on it) down
                log.exception(
                    "control_message_failed", channel=self._name, message=type(message).__name__
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(f"channel closed ({exc})" if exc else "channel closed")

    def close(self) -> None:
        """Close after the queued messages are written."""
        if self._transport is not None:
            self._transport.close()

    def _lose(self, reason: str) -> None:
        if self._transport is not None:
            self._transport.close()
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback(reason)
