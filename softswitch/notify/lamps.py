"""Busy lamps: the ``dialog`` event package (RFC 4235) for extensions and named resources.

The lamp board keeps, per resource, the dialogs a lamp shows: an extension's calls as the
call layer reports them (it implements :class:`~softswitch.calls.observers.CallObserver`),
and whatever another part of the switch shows on a named resource (a park orbit) through
:meth:`LampBoard.show` / :meth:`LampBoard.clear`. Every change is NOTIFYed as full state
(``dialog-info`` with ``state="full"`` and a version counting up per subscription), the
form desk phones' BLF keys read: no dialog is idle, ``early`` rings (recipient: a key
offers pickup), ``confirmed`` is on a call, and a dialog that ended is shown once as
``terminated``.

With a ``window`` (the switch's is :data:`LAMP_WINDOW`), the changes of a lamp within that
many seconds go out as one NOTIFY of the state at its end: a phone answered at once rings
and is on a call within milliseconds, and its watchers need one NOTIFY for that, not two
(RFC 6665 4.2.2 lets a notifier throttle a package's NOTIFYs). A dialog that ended is still
shown as ``terminated`` in that NOTIFY. The document of a lamp is built once per change,
not once per watcher (only its ``version`` differs between watchers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

from softswitch.calls.observers import CallObservers, UserLeg
from softswitch.directory import Domain, Subscriber
from softswitch.notify.subscriptions import Notifier, SubscriptionRefused
from softswitch.sip.subscription import EventPackage, Subscription

__all__ = ["DIALOG_PACKAGE", "LAMP_WINDOW", "LampBoard", "LampDialog", "dialog_info"]

DIALOG_PACKAGE = EventPackage("dialog", "application/dialog-info+xml", default_expires=3600)

_STATES = ("trying", "proceeding", "early", "confirmed", "terminated")

#: Seconds a lamp's changes are gathered into one NOTIFY on the switch (short enough that a
#: key lights with no delay a person notices).
LAMP_WINDOW = 0.05


class LampDialog(NamedTuple):
    """One dialog a lamp shows (RFC 4235 ``<dialog>``)."""

    id: str
    state: str  # trying, proceeding, early, confirmed, terminated
    initiator: bool = False  # direction: the resource placed the call
    call_id: str = ""
    local_tag: str = ""
    remote: str = ""  # the other party's URI, if known


def dialog_info(entity: str, version: int, dialogs: list[LampDialog]) -> bytes:
    """The full-state ``dialog-info`` document of ``entity``."""
    head, tail = _document(entity, dialogs)
    return b"%s%d%s" % (head, version, tail)


def _document(entity: str, dialogs: Iterable[LampDialog]) -> tuple[bytes, bytes]:
    """``dialog_info`` without its version: the bytes before and after it."""
    lines = [
        f'" state="full" entity={quoteattr(entity)}>',
    ]
    for dialog in dialogs:
        attributes = f"id={quoteattr(dialog.id)}"
        if dialog.call_id:
            attributes += f" call-id={quoteattr(dialog.call_id)}"
        if dialog.local_tag:
            attributes += f" local-tag={quoteattr(dialog.local_tag)}"
        direction = "initiator" if dialog.initiator else "recipient"
        lines.append(f'<dialog {attributes} direction="{direction}">')
        lines.append(f"<state>{dialog.state}</state>")
        if dialog.remote:
            lines.append(
                f"<remote><identity>{escape(dialog.remote)}</identity>"
                f"<target uri={quoteattr(dialog.remote)}/></remote>"
            )
        lines.append(
            f"<local><identity>{escape(entity)}</identity><target uri={quoteattr(entity)}/></local>"
        )
        lines.append("</dialog>")
    lines.append("</dialog-info>")
    return _HEAD, ("\r\n".join(lines) + "\r\n").encode()


_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="'
)


class _Lamp:
    __slots__ = ("dialogs", "document", "entity")

    def __init__(self, entity: str) -> None:
        self.entity = entity
        self.dialogs: dict[str, LampDialog] = {}
        self.document: tuple[bytes, bytes] | None = None  # built on the first NOTIFY

    def changed(self, dialog: LampDialog) -> None:
        self.dialogs[dialog.id] = dialog
        self.document = None

    def prune(self) -> None:
        """Forget the dialogs shown as terminated (after their NOTIFY)."""
        ended = [k for k, d in self.dialogs.items() if d.state == "terminated"]
        for key in ended:
            del self.dialogs[key]
        if ended:
            self.document = None


class LampBoard:
    """The dialog package's state (see the module docstring)."""

    package = DIALOG_PACKAGE

    def __init__(self, notifier: Notifier, window: float = 0.0) -> None:
        self.notifier = notifier
        self.window = window
        self._lamps: dict[str, _Lamp] = {}
        self._changed: dict[str, None] = {}  # lamps changed within the window, in order
        # Named resources by tenant (park orbits...), besides the tenants' users.
        self._named: dict[str, set[str]] = {}
        self._calls: CallObservers | None = None

    def follow(self, calls: CallObservers) -> None:
        """Show the users' legs the call layer reports through ``calls``."""
        self._calls = calls
        calls.observers.append(self)

    # ----------------------------------------------------------------- the package
    def resource(self, domain: Domain, subscriber: Subscriber, name: str) -> str:
        """An extension (or SIP user name) of the subscriber's tenant, or a named resource."""
        tenant = domain.tenant
        if name in self._named.get(tenant.name, ()):
            return f"{tenant.name}/{name}"
        user = tenant.user_by_extension(name)
        if user is None:
            found = self.notifier.directory.subscriber(domain.name, name)
            user = found.user if found is not None else None
        if user is None:
            raise SubscriptionRefused(404, "Not Found")
        if self._calls is not None:
            # Only watched users' legs are reported: a new watch asks for the calls in progress.
            self._calls.watch(self, tenant.name, user.extension)
        return f"{tenant.name}/{user.extension}"

    def body(self, sub: Subscription) -> bytes:
        lamp = self._lamps.get(sub.resource)
        if lamp is None:
            tenant, _, name = sub.resource.partition("/")
            return dialog_info(self._entity(tenant, name), sub.version, [])
        document = lamp.document
        if document is None:
            document = lamp.document = _document(lamp.entity, lamp.dialogs.values())
        return b"%s%d%s" % (document[0], sub.version, document[1])

    def state_of(self, tenant: str, resource: str) -> list[LampDialog]:
        """The dialogs shown on a resource now."""
        lamp = self._lamps.get(f"{tenant}/{resource}")
        return list(lamp.dialogs.values()) if lamp is not None else []

    # ----------------------------------------------------------------- named resources
    def add_resource(self, tenant: str, name: str) -> None:
        """Let phones watch ``name`` (a park orbit...) of ``tenant``."""
        self._named.setdefault(tenant, set()).add(name)

    def remove_resource(self, tenant: str, name: str) -> None:
        """``name`` is gone: its watchers are told (``noresource``)."""
        self._named.get(tenant, set()).discard(name)
        key = f"{tenant}/{name}"
        self._lamps.pop(key, None)
        self._changed.pop(key, None)
        self.notifier.terminate(self.notifier.table.watching(self.package.name, key), "noresource")

    def show(self, tenant: str, resource: str, dialog: LampDialog, entity: str = "") -> None:
        """Show ``dialog`` on ``resource`` (replacing the dialog of the same id); a
        terminated one is NOTIFYed once, then forgotten."""
        if dialog.state not in _STATES:
            raise ValueError(f"not a dialog state: {dialog.state!r}")
        key = f"{tenant}/{resource}"
        lamp = self._lamps.get(key)
        if lamp is None:
            if dialog.state == "terminated":
                return
            lamp = self._lamps[key] = _Lamp(entity or self._entity(tenant, resource))
        lamp.changed(dialog)
        if self.window <= 0:
            self._publish(key, lamp)
            return
        if not self._changed:
            self.notifier.schedule(self.window, self._publish_changed)
        self._changed[key] = None

    def _publish_changed(self) -> None:
        changed, self._changed = self._changed, {}
        for key in changed:
            lamp = self._lamps.get(key)
            if lamp is not None:
                self._publish(key, lamp)

    def _publish(self, key: str, lamp: _Lamp) -> None:
        """NOTIFY the lamp's state now; the dialogs shown as terminated are then forgotten."""
        self.notifier.publish(self.package.name, key)
        lamp.prune()
        if not lamp.dialogs:
            del self._lamps[key]

    def clear(self, tenant: str, resource: str, dialog_id: str) -> None:
        """The dialog ``dialog_id`` on ``resource`` is over."""
        lamp = self._lamps.get(f"{tenant}/{resource}")
        old = lamp.dialogs.get(dialog_id) if lamp is not None else None
        if old is not None:
            self.show(tenant, resource, old._replace(state="terminated"))

    def _entity(self, tenant_name: str, resource: str) -> str:
        tenant = self.notifier.tenants.get(tenant_name)
        domain = tenant.domain if tenant is not None else tenant_name
        return f"sip:{resource}@{domain}"

    # ----------------------------------------------------------------- CallObserver
    def watches(self, tenant: str, user: str) -> bool:
        """A lamp shows ``user``'s legs only while someone subscribes to it."""
        return self.notifier.table.watched(self.package.name, f"{tenant}/{user}")

    def leg_started(self, leg: UserLeg) -> None:
        self._show_leg(leg, "trying" if leg.initiator else "early")

    def leg_answered(self, leg: UserLeg) -> None:
        self._show_leg(leg, "confirmed")

    def leg_ended(self, leg: UserLeg) -> None:
        self._show_leg(leg, "terminated")

    def _show_leg(self, leg: UserLeg, state: str) -> None:
        remote = f"sip:{leg.remote}@{leg.domain}" if leg.remote else ""
        dialog = LampDialog(leg.leg_id, state, leg.initiator, leg.call_id, leg.local_tag, remote)
        self.show(leg.tenant, leg.user, dialog, f"sip:{leg.user}@{leg.domain}")
