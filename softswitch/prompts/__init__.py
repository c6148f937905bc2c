"""Prompts: the per-tenant prompt library, text-to-speech and the phrase builder.

:class:`PromptLibrary` finds and plays prompts by name and language (see
:mod:`softswitch.prompts.library`); :class:`Phrase` composes what the switch says
("you have three new messages, received December sixth at ten forty two P M") out of
prompts, per the rules of a language (:mod:`softswitch.prompts.english`).
"""

from softswitch.prompts.library import Prompt, PromptError, PromptLibrary
from softswitch.prompts.phrases import MESSAGES, MINUTES, Phrase, Segment
from softswitch.prompts.speech import SpeechError, Synthesiser

__all__ = [
    "MESSAGES",
    "MINUTES",
    "Phrase",
    "Prompt",
    "PromptError",
    "PromptLibrary",
    "Segment",
    "SpeechError",
    "Synthesiser",
]
