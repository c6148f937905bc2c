"""Which module runs each kind of application node of the callflow tree.

Adding an application means registering its node kind here from its own module (as
``CallServices`` does for conference bridges), not touching the call manager or the
executor. Every application kind starts registered with ``not_available`` (the caller
hears 480, as before there was any application), so a kind whose module is not written yet
(voicemail, queue, auto attendant, fax today) goes through the same path as the others and
its module only has to register itself. ``HANG_UP`` is not here: the executor ends the call
with the node's cause itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from routing.plan import APPLICATION_KINDS, NOT_SERVED, Target, TargetKind
from softswitch.calls.apps import Application, CallRefused

__all__ = ["ApplicationRegistry", "not_available"]

_CallT = TypeVar("_CallT")

#: The kinds a module may register: every application kind but the executor's own HANG_UP.
REGISTRABLE_KINDS = APPLICATION_KINDS - {TargetKind.HANG_UP}


def not_available(call: object, target: Target) -> Application | None:
    """The module of a kind nobody has written yet: the caller hears 480, with a reason
    phrase naming what is missing (``Fax Not Available``)."""
    raise CallRefused(480, NOT_SERVED.get(target.kind, "Temporarily Unavailable"))


class ApplicationRegistry(Generic[_CallT]):
    """Application node kind -> the factory of its module.

    A factory gets the call and the node's target and returns the application to run on
    the answered call; None (nothing of that name, e.g. an unknown bridge) or ``CallRefused``
    refuses the call, which the callflow may branch on (rejected with that status).
    """

    __slots__ = ("_factories",)

    def __init__(self) -> None:
        self._factories: dict[TargetKind, Callable[[_CallT, Target], Application | None]] = {
            kind: not_available for kind in REGISTRABLE_KINDS
        }

    def register(
        self, kind: TargetKind | str, factory: Callable[[_CallT, Target], Application | None]
    ) -> None:
        """Run ``factory``'s applications for nodes of ``kind`` (replacing what was there)."""
        try:
            known = TargetKind(kind)
        except ValueError:
            raise ValueError(f"application kind {kind!r} is not a callflow node kind") from None
        if known not in REGISTRABLE_KINDS:
            raise ValueError(f"{known.value!r} is not an application kind a module can run")
        self._factories[known] = factory

    def __setitem__(
        self, kind: TargetKind | str, factory: Callable[[_CallT, Target], Application | None]
    ) -> None:
        self.register(kind, factory)

    def available(self) -> frozenset[TargetKind]:
        """The kinds a module has registered for (the others answer 480)."""
        return frozenset(k for k, f in self._factories.items() if f is not not_available)

    def application(self, call: _CallT, target: Target) -> Application:
        """The application for ``target``'s node; raises CallRefused when there is none."""
        factory = self._factories.get(target.kind)
        if factory is None:
            raise CallRefused(480, "Temporarily Unavailable")
        app = factory(call, target)
        if app is None:
            raise CallRefused(480, "Temporarily Unavailable")
        return app
