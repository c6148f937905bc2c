"""`softswitch voicemail`: list, play (to a WAV file) and delete messages of a mailbox;
unlock a mailbox locked by wrong PINs; set a greeting from a file or a text.

The commands work on the Store of the configuration and the files under
``[voicemail] directory``, the ones the switch uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from config import SwitchConfig
from config.voicemail import Greeting
from softswitch.cli_common import CommandError, guarded, load_checked_config, with_store
from softswitch.prompts import PromptError, PromptLibrary
from softswitch.provisioning.runtime import stored_config
from softswitch.voicemail.mailboxes import Box, Mailboxes, VoicemailError
from storage.base import Store

__all__ = ["add_voicemail_commands"]


async def _boxes(config: SwitchConfig, store: Store) -> Mailboxes:
    config = await stored_config(config, store)
    boxes = Mailboxes(config.voicemail, store, config.tenants)
    await boxes.start(recover=False)  # a running switch may be recording
    return boxes


def _box(boxes: Mailboxes, args: argparse.Namespace) -> Box:
    if boxes.tenant(args.tenant) is None:
        raise CommandError(f"no tenant {args.tenant!r}", 2)
    box = boxes.box(args.tenant, args.mailbox)
    if box is None:
        raise CommandError(f"tenant {args.tenant} has no mailbox {args.mailbox!r}", 2)
    return box


def _cmd_list(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)

    async def work(store: Store) -> list[str]:
        boxes = await _boxes(config, store)
        if boxes.tenant(args.tenant) is None:
            raise CommandError(f"no tenant {args.tenant!r}", 2)
        chosen = [_box(boxes, args)] if args.mailbox else boxes.boxes(args.tenant)
        lines = []
        for box in chosen:
            for m in boxes.messages(box.address):
                when = dt.datetime.fromtimestamp(m.received, dt.UTC).isoformat(timespec="seconds")
                caller = (
                    f"{m.caller_name} <{m.caller_number}>" if m.caller_name else m.caller_number
                )
                urgent = "\turgent" if m.urgent else ""
                lines.append(
                    f"{m.mailbox}\t{m.id}\t{m.folder}\t{when}\t{m.duration:.1f}s\t{caller}{urgent}"
                )
        return lines

    for line in with_store(config, work):
        print(line)
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)

    async def work(store: Store) -> str:
        boxes = await _boxes(config, store)
        box = _box(boxes, args)
        message = boxes.message(box.address, args.id)
        if message is None:
            raise CommandError(f"mailbox {args.mailbox} has no message {args.id!r}", 1)
        shutil.copyfile(boxes.audio_path(message), args.out)
        return f"{args.out}: {message.duration:.1f} s from {message.caller_number or 'unknown'}"

    print(with_store(config, work))
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)

    async def work(store: Store) -> bool:
        boxes = await _boxes(config, store)
        box = _box(boxes, args)
        if boxes.message(box.address, args.id) is None:
            return False
        await boxes.delete(box.address, args.id)
        return True

    if not with_store(config, work):
        print(f"mailbox {args.mailbox} has no message {args.id!r}", file=sys.stderr)
        return 1
    return 0


def _cmd_unlock(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)

    async def work(store: Store) -> None:
        boxes = await _boxes(config, store)
        await boxes.unlock(_box(boxes, args).address)

    with_store(config, work)
    print(f"mailbox {args.mailbox} unlocked")
    return 0


def _cmd_greeting(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)
    kind = Greeting(args.kind)

    async def work(store: Store) -> str:
        boxes = await _boxes(config, store)
        box = _box(boxes, args)
        if args.remove:
            removed = boxes.remove_greeting(box.address, kind)
            return f"{kind.value} greeting {'removed' if removed else 'was not recorded'}"
        if args.text is not None:
            library = PromptLibrary.from_config(config)
            spoken = await library.speak(args.text, tenant=args.tenant)
            with tempfile.TemporaryDirectory() as tmp:
                source = Path(tmp) / "spoken.wav"
                shutil.copyfile(spoken, source)
                path = await boxes.set_greeting(box.address, kind, source)
        else:
            path = await boxes.set_greeting(box.address, kind, Path(args.file))
        return f"{kind.value} greeting of {args.mailbox}: {path}"

    print(with_store(config, work))
    return 0


def add_voicemail_commands(sub: Any, default_config: str) -> None:
    """Add `voicemail` (list, play, delete, unlock, greeting) to the `softswitch` parser."""
    vm = sub.add_parser("voicemail", help="mailboxes: messages, lockouts, greetings")
    vsub = vm.add_subparsers(dest="action", required=True)

    def command(name: str, text: str, func: Any, mailbox: str = "") -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = vsub.add_parser(name, help=text)
        cmd.add_argument("--config", default=default_config, help="configuration file (TOML)")
        cmd.add_argument("--database", help="database URL (default: the configuration's)")
        cmd.add_argument("tenant", help="the tenant's name")
        if mailbox == "optional":
            cmd.add_argument("mailbox", nargs="?", help="the mailbox (default: every one)")
        else:
            cmd.add_argument("mailbox", help="the mailbox (an extension)")
        errors = (VoicemailError, PromptError, OSError)
        cmd.set_defaults(func=guarded(func, *errors))
        return cmd

    command("list", "the messages of a mailbox or of every mailbox", _cmd_list, "optional")
    play = command("play", "write a message's audio to a WAV file", _cmd_play)
    play.add_argument("id", help="the message id (from list)")
    play.add_argument("--out", required=True, help="the WAV file to write")
    delete = command("delete", "delete a message for good", _cmd_delete)
    delete.add_argument("id", help="the message id (from list)")
    command("unlock", "lift a lockout after wrong PINs", _cmd_unlock)
    greeting = command("greeting", "set or remove a greeting", _cmd_greeting)
    greeting.add_argument("kind", choices=[g.value for g in Greeting])
    how = greeting.add_mutually_exclusive_group(required=True)
    how.add_argument("--file", help="an audio file (WAV, AIFF, FLAC, ...)")
    how.add_argument("--text", help="text spoken by text-to-speech")
    how.add_argument("--remove", action="store_true", help="remove the recorded greeting")
