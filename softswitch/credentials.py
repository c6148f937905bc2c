"""Who a request's digest credentials prove its sender to be: the one check behind the
registrar (REGISTER, Authorization), call admission (INVITE, Proxy-Authorization) and the
notifier (SUBSCRIBE, Proxy-Authorization).

The digest arithmetic and nonces live in `softswitch.sip.auth` (sans-I/O); this module
adds what the three share around it: picking the credentials of the domain's realm,
looking the subscriber up in the directory, telling the security guard of a failure and
logging the denial. Each caller answers (401/407 challenge or 403) in its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from softswitch.directory import Directory, Domain, Subscriber
from softswitch.security.guard import SecurityGuard
from softswitch.sip.auth import DigestAuthenticator, realm_of
from softswitch.sip.message import SipRequest

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Authentication:
    """The outcome of one check: ``subscriber`` when proven; otherwise ``denied`` (answer
    403) or a challenge to send (``stale``: the credentials were right but the nonce old)."""

    subscriber: Subscriber | None = None
    denied: bool = False
    stale: bool = False


def authenticate(
    request: SipRequest,
    header: str,
    domain: Domain,
    directory: Directory,
    authenticator: DigestAuthenticator,
    guard: SecurityGuard | None,
    source_host: str,
    denied_event: str,
) -> Authentication:
    """Check the first ``header`` credentials of ``domain``'s realm (or of no realm).

    A failure (other than a stale nonce) is logged as ``denied_event`` and told to
    ``guard`` per source and account; a success is left to the caller to report, since
    the registrar reports it only once the bindings are stored.
    """
    realm = domain.realm
    for credentials in request.get_all(header):
        if realm_of(credentials) in (realm, None):
            break
    else:
        return Authentication()
    name = domain.name

    def lookup_ha1(username: str, realm_: str, algorithm: str) -> str | None:
        return directory.ha1(name, username, realm_, algorithm)

    result = authenticator.verify(request.method, credentials, realm, lookup_ha1)
    if result.ok and result.username is not None:
        subscriber = directory.subscriber(name, result.username)
        if subscriber is not None:
            return Authentication(subscriber)
    elif result.stale:
        return Authentication(stale=True)
    # Unknown user and wrong password look the same from outside.
    log.info(
        denied_event,
        reason=str(result.reason),
        detail=result.detail,
        username=result.username,
        call_id=request.call_id,
    )
    if guard is not None:  # security: one failure, per source and account
        known = directory.subscriber(name, result.username or "")
        account = known.aor if known else f"sip:{result.username}@{name}"
        guard.auth_failed(source_host, account)
    return Authentication(denied=True)
