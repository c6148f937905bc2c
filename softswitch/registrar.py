"""The registrar (RFC 3261 section 10.3, RFC 3327 Path, RFC 5626 instance/reg-id)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from config.models import RegistrarSettings
from softswitch.credentials import authenticate
from softswitch.directory import Directory, Subscriber
from softswitch.location import LocationService
from softswitch.security.guard import SecurityGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import SipParseError, SipRequest, SipResponse, make_response, new_tag
from storage.base import Binding

log = structlog.get_logger(__name__)

MAX_CONTACTS_PER_AOR = 20


@dataclass(slots=True)
class _ContactUpdate:
    uri: str
    expires: int
    q: float | None
    instance_id: str | None
    reg_id: int | None


class RegistrationRejected(Exception):
    """A REGISTER that is answered with an error status."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


class Registrar:
    """Authenticates REGISTER requests and maintains bindings in the location service."""

    def __init__(
        self,
        settings: RegistrarSettings,
        directory: Directory,
        authenticator: DigestAuthenticator,
        location: LocationService,
        *,
        response_headers: Sequence[tuple[str, str]] = (),
        guard: SecurityGuard | None = None,
    ):
        self._settings = settings
        self._directory = directory
        self._auth = authenticator
        self._location = location
        # Appended to every response (the switch's Server header): passed to make_response
        # rather than added afterwards, which would scan the header list again.
        self._response_headers = tuple(response_headers)
        self._guard = guard  # told every digest outcome (softswitch/security)
        self.registered = 0
        self.challenged = 0
        self.rejected = 0
        # Whose REGISTER, answered last, added a contact (a phone new among the user's
        # bindings) and under which domain: what the dispatcher tells message waiting, so a
        # refresh (nearly every REGISTER) costs nothing beyond the registration.
        self.contact_added: tuple[Subscriber, str] | None = None

    def handle(self, request: SipRequest, source: Address) -> SipResponse:
        """Answer one REGISTER; every outcome is a response, never an exception."""
        self.contact_added = None
        try:
            return self._register(request, source)
        except RegistrationRejected as rejection:
            self.rejected += 1
            return make_response(
                request,
                rejection.status,
                rejection.reason,
                to_tag=new_tag(),
                headers=(*rejection.headers, *self._response_headers),
            )
        except SipParseError as error:
            self.rejected += 1
            return make_response(
                request, 400, error.reason, to_tag=new_tag(), headers=self._response_headers
            )

    def _register(self, request: SipRequest, source: Address) -> SipResponse:
        to = request.to
        to_uri = to.uri if to is not None else None
        if to_uri is None or not to_uri.is_sip or not to_uri.user:
            raise RegistrationRejected(400, "Bad To header")
        domain = self._directory.domain_for(to_uri.host)
        if domain is None:
            raise RegistrationRejected(404, "Domain Not Served")
        checked = authenticate(
            request,
            "Authorization",
            domain,
            self._directory,
            self._auth,
            self._guard,
            source.host,
            "registration_denied",
        )
        if checked.denied:
            raise RegistrationRejected(403, "Forbidden")
        subscriber = checked.subscriber
        if subscriber is None:
            self.challenged += 1
            headers = [
                ("WWW-Authenticate", c)
                for c in self._auth.challenge(domain.realm, stale=checked.stale)
            ]
            headers += self._response_headers
            return make_response(request, 401, "Unauthorized", to_tag=new_tag(), headers=headers)
        if to_uri.user not in (subscriber.user.extension, subscriber.user.username):
            raise RegistrationRejected(403, "Forbidden")

        aor = subscriber.aor
        now = time.time()
        current = self._location.current(aor, now)
        call_id = request.call_id or ""
        request_cseq = request.cseq
        cseq = request_cseq[0] if request_cseq else 0
        updates, remove_all = self._contact_updates(request)

        paths = request.get_all("Path")
        received = str(source)
        user_agent = request.get("User-Agent")
        upserts: list[tuple[Binding, Address]] = []
        removals: list[str] = []
        added = False
        if remove_all:
            for binding in current.values():
                # RFC 3261 10.3 step 6: an older request of the same Call-ID changes nothing.
                if binding.call_id == call_id and cseq <= binding.cseq:
                    continue
                removals.append(binding.contact)
        for update in updates:
            existing = current.get(update.uri)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                raise RegistrationRejected(500, "Out of order CSeq")
            if update.expires == 0:
                if existing is not None:
                    removals.append(update.uri)
                continue
            if update.instance_id is not None:
                # RFC 5626: one binding per instance and reg-id; a new Contact replaces it.
                removals.extend(
                    b.contact
                    for b in current.values()
                    if b.instance_id == update.instance_id
                    and b.reg_id == update.reg_id
                    and b.contact != update.uri
                )
            added = added or existing is None
            binding = Binding(
                aor=aor,
                contact=update.uri,
                expires_at=now + update.expires,
                q=update.q,
                call_id=call_id,
                cseq=cseq,
                instance_id=update.instance_id,
                reg_id=update.reg_id,
                path=paths,
                received=received,
                transport=source.transport,
                user_agent=user_agent,
                registered_at=existing.registered_at if existing else now,
                reachable=existing.reachable if existing else None,
            )
            upserts.append((binding, source))
        # Counted only when it could exceed the limit (a phone refreshing its one contact).
        if (
            len(current) + len(upserts) > MAX_CONTACTS_PER_AOR
            and len({c for c in current if c not in removals} | {b.contact for b, _ in upserts})
            > MAX_CONTACTS_PER_AOR
        ):
            raise RegistrationRejected(403, "Too Many Contacts")
        if upserts or removals:
            self._location.update(aor, upserts, removals)
        if added:
            self.contact_added = (subscriber, domain.name)
        self.registered += 1
        if self._guard is not None:  # security: a success (alarm on a new address)
            self._guard.auth_succeeded(source.host, aor)

        headers = [("Contact", _contact_value(b, now)) for b in self._location.bindings(aor, now)]
        if paths and _supports(request, "path"):
            headers.extend(("Path", path) for path in paths)
        headers.append(("Date", _http_date(now)))
        headers += self._response_headers
        return make_response(request, 200, "OK", to_tag=new_tag(), headers=headers)

    def _contact_updates(self, request: SipRequest) -> tuple[list[_ContactUpdate], bool]:
        """The Contact header fields of a REGISTER with their effective expiry."""
        settings = self._settings
        header_expires = request.expires
        contacts = request.contacts
        for contact in contacts:
            if contact.is_star:
                if len(contacts) != 1 or header_expires != 0:
                    raise RegistrationRejected(
                        400, "Contact * needs Expires: 0 and no other contact"
                    )
                return [], True
        updates: list[_ContactUpdate] = []
        for contact in contacts:
            params = contact.params
            raw = params.get("expires")
            if raw is not None:
                if not (raw.isascii() and raw.isdigit()):
                    raise RegistrationRejected(400, "Bad Contact expires")
                expires = int(raw)
            elif header_expires is not None:
                expires = header_expires
            else:
                expires = settings.default_expires
            if 0 < expires < settings.min_expires:
                raise RegistrationRejected(
                    423, "Interval Too Brief", (("Min-Expires", str(settings.min_expires)),)
                )
            expires = min(expires, settings.max_expires)
            q_raw = params.get("q")
            q = None
            if q_raw is not None:
                try:
                    q = float(q_raw)
                except ValueError:
                    raise RegistrationRejected(400, "Bad q-value") from None
                if not 0.0 <= q <= 1.0:
                    raise RegistrationRejected(400, "Bad q-value")
            instance = params.get("+sip.instance")
            reg_id_raw = params.get("reg-id")
            reg_id = (
                int(reg_id_raw)
                if reg_id_raw and (reg_id_raw.isascii() and reg_id_raw.isdigit())
                else None
            )
            updates.append(
                _ContactUpdate(
                    uri=str(contact.uri),
                    expires=expires,
                    q=q,
                    instance_id=instance.strip('"') if instance else None,
                    reg_id=reg_id,
                )
            )
        return updates, False


def _contact_value(binding: Binding, now: float) -> str:
    value = f"<{binding.contact}>;expires={max(0, int(binding.expires_at - now + 0.5))}"
    if binding.q is not None:
        value += f";q={binding.q:g}"
    if binding.instance_id is not None:
        value += f';+sip.instance="{binding.instance_id}"'
    if binding.reg_id is not None:
        value += f";reg-id={binding.reg_id}"
    return value


_DATE_CACHE: list[object] = [0, ""]


def _http_date(now: float) -> str:
    """RFC 1123 date for the Date header; formatted once a second."""
    second = int(now)
    if _DATE_CACHE[0] != second:
        _DATE_CACHE[0] = second
        _DATE_CACHE[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))
    return str(_DATE_CACHE[1])


def _supports(request: SipRequest, option: str) -> bool:
    return any(
        token.strip().lower() == option
        for header in ("Supported", "Require")
        for token in request.get_all(header)
    )
