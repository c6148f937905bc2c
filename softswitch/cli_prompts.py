"""`softswitch prompts`: list, add (a file or a text), remove and say prompts of the library.

The commands work on the files under ``[prompts] directory`` of the configuration, the
same files the running switch reads, so an added prompt plays on the next use.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

import numpy as np

from config import SwitchConfig
from media.wav import write_wav
from softswitch.cli_common import guarded, load_config_or_exit
from softswitch.prompts import MESSAGES, Phrase, PromptError, PromptLibrary

__all__ = ["add_prompt_commands"]


def _library(args: argparse.Namespace) -> tuple[SwitchConfig, PromptLibrary]:
    config = load_config_or_exit(args.config)
    tenant = getattr(args, "tenant", None)
    if tenant is not None and tenant not in {t.name for t in config.tenants}:
        print(f"no tenant {tenant!r} in {args.config}", file=sys.stderr)
        raise SystemExit(2)
    return config, PromptLibrary.from_config(config)


def _cmd_list(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    if args.generated:
        language = args.language or lib.language_of(args.tenant)
        for name, said in sorted(lib.generated(language).items()):
            print(f"{language}\t{name}\tgenerated: {said}")
        return 0
    for prompt in lib.stored(args.tenant):
        what = prompt.path if prompt.kind == "file" else f"text: {prompt.text}"
        print(f"{prompt.language}\t{prompt.name}\t{what}")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    prompt, info = lib.add_file(args.file, args.name, tenant=args.tenant, language=args.language)
    print(
        f"{prompt.name} ({prompt.language}): {info.source_format}, {info.source_rate} Hz, "
        f"{info.source_channels} channel(s) -> {prompt.path} ({info.seconds:.1f} s)"
    )
    return 0


def _cmd_text(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    prompt = lib.add_text(args.name, args.text, tenant=args.tenant, language=args.language)
    print(f"{prompt.name} ({prompt.language}): spoken from text")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    if not lib.remove(args.name, tenant=args.tenant, language=args.language):
        print(f"no stored prompt {args.name!r}", file=sys.stderr)
        return 1
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    count = asyncio.run(lib.prepare(tenant=args.tenant, language=args.language))
    print(f"{count} generated prompts ready in {lib.synthesiser.cache_dir}")
    return 0


def _phrase(args: argparse.Namespace, language: str) -> Phrase:
    phrase = Phrase(language)
    if args.messages is not None:
        phrase.prompt("vm-you-have").count(args.messages, MESSAGES, "vm-new")
    if args.received is not None:
        when = dt.datetime.fromisoformat(args.received)
        phrase.prompt("vm-received").date(when.date()).prompt("vm-at").time(when)
    for name in args.name:
        phrase.prompt(name)
    if args.number is not None:
        phrase.number(args.number)
    if args.digits is not None:
        phrase.digits(args.digits)
    if args.text is not None:
        phrase.text(args.text)
    return phrase


def _cmd_say(args: argparse.Namespace) -> int:
    _, lib = _library(args)
    language = args.language or lib.language_of(args.tenant)
    try:
        phrase = _phrase(args, language)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    audio = asyncio.run(lib.render(phrase, tenant=args.tenant, language=language))
    write_wav(args.out, np.asarray(audio, dtype=np.int16))
    names = " ".join(s.value if s.kind == "prompt" else repr(s.value) for s in phrase.segments)
    print(f"{args.out}: {len(audio) / 8000:.1f} s: {names}")
    return 0


def add_prompt_commands(sub: Any, default_config: str) -> None:
    """Add `prompts` (list, add, text, remove, say) to the `softswitch` sub-command parser."""
    prompts = sub.add_parser("prompts", help="the prompt library: uploads, texts, speech")
    psub = prompts.add_subparsers(dest="action", required=True)

    def command(name: str, text: str, func: Any) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = psub.add_parser(name, help=text)
        cmd.add_argument("--config", default=default_config, help="configuration file (TOML)")
        cmd.add_argument("--tenant", help="the tenant's prompts (default: the system's)")
        cmd.set_defaults(func=guarded(func, PromptError, prefix=""))
        return cmd

    listing = command("list", "stored prompts of a tenant or of the system", _cmd_list)
    listing.add_argument(
        "--generated", action="store_true", help="the system prompts spoken from text instead"
    )
    listing.add_argument("--language", help="language of --generated (default: the tenant's)")
    add = command("add", "convert an audio file (WAV, AIFF, FLAC, ...) into the library", _cmd_add)
    add.add_argument("file", help="the audio file")
    add.add_argument("name", help="prompt name (e.g. welcome, vm-you-have, digits/7)")
    text = command("text", "give a prompt as text, spoken by text-to-speech", _cmd_text)
    text.add_argument("name", help="prompt name")
    text.add_argument("text", help="what it says")
    remove = command("remove", "remove a stored prompt", _cmd_remove)
    remove.add_argument("name", help="prompt name")
    generate = command(
        "generate", "synthesise every generated system prompt ahead of use", _cmd_generate
    )
    for cmd in (add, text, remove, generate):
        cmd.add_argument("--language", help="language tag (default: the tenant's)")

    say = command("say", "render prompts and phrases to a WAV file to listen to", _cmd_say)
    say.add_argument("name", nargs="*", help="prompt names, in order")
    say.add_argument("--out", required=True, help="the WAV file to write")
    say.add_argument("--language", help="language tag (default: the tenant's)")
    say.add_argument("--messages", type=int, help='"you have N new messages"')
    say.add_argument("--received", help='"received <date> at <time>" (ISO date and time)')
    say.add_argument("--number", type=int, help="a number")
    say.add_argument("--digits", help="digits one by one")
    say.add_argument("--text", help="free text")
