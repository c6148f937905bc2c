"""Number classes of outside numbers, for calling permissions: what a number costs to call.

From ``phonenumbers``: the number's type (premium rate, toll free, shared cost, mobile,
fixed line) and its region. A number of another region than the tenant's is international
(within the North American Numbering Plan too: +1 876 is Jamaica, the classic one-ring
fraud destination); +870, +881 and +882 (Inmarsat, the global mobile satellite system and
international networks, Thuraya among them) are satellite. A number may be in two classes
(a foreign premium-rate number is international *and* premium rate); a call needs every
one of them allowed. Results are cached: parsing costs tens of microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType

from config.calling import NumberClass

__all__ = ["SATELLITE_CODES", "Classified", "area_code", "classify"]

#: Country calling codes of satellite (and satellite-priced international network) ranges.
SATELLITE_CODES = frozenset({870, 881, 882})

_TYPE_CLASS = {
    PhoneNumberType.PREMIUM_RATE: NumberClass.PREMIUM_RATE,
    PhoneNumberType.TOLL_FREE: NumberClass.TOLL_FREE,
    PhoneNumberType.SHARED_COST: NumberClass.SHARED_COST,
    PhoneNumberType.MOBILE: NumberClass.MOBILE,
}
_GEOGRAPHIC = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True, slots=True)
class Classified:
    """An outside number's classes (``main``: the most telling one, for messages) and its
    region (ISO code, ``001`` for non-geographic numbers, "" when unknown)."""

    number: str
    main: NumberClass
    classes: frozenset[NumberClass]
    region: str


def area_code(e164: str) -> str | None:
    """The geographic area code of an E.164 number (``+14155550100`` -> ``1415``: country
    code and area code), None when it has none or is not a number."""
    return _area_code(e164)


@lru_cache(maxsize=4096)
def _area_code(e164: str) -> str | None:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    length = phonenumbers.length_of_geographical_area_code(parsed)
    if length <= 0:
        return None
    national = phonenumbers.national_significant_number(parsed)
    return f"{parsed.country_code}{national[:length]}"


def classify(e164: str, home_region: str, home_area: str | None = None) -> Classified:
    """The classes of outside number ``e164`` called from ``home_region`` (ISO code), in
    the area ``home_area`` (see ``area_code``; None: no call is local)."""
    return _classify(e164, home_region.upper(), home_area)


@lru_cache(maxsize=65536)
def _classify(e164: str, home: str, home_area: str | None) -> Classified:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        # Not a number phonenumbers can read: nothing is known, so it is treated as the
        # dearest kind rather than let through as national.
        dearest = NumberClass.INTERNATIONAL
        return Classified(e164, dearest, frozenset({dearest}), "")
    code = parsed.country_code or 0
    if code in SATELLITE_CODES:
        classes = frozenset({NumberClass.SATELLITE, NumberClass.INTERNATIONAL})
        return Classified(e164, NumberClass.SATELLITE, classes, "001")
    valid = phonenumbers.is_valid_number(parsed)
    region = phonenumbers.region_code_for_number(parsed) if valid else None
    if region is None:
        # Invalid (or unassigned) numbers: their country code says as much as is known.
        regions = phonenumbers.region_codes_for_country_code(code)
        home_code = phonenumbers.country_code_for_region(home)
        region = home if code == home_code else (regions[0] if regions else "")
    found: set[NumberClass] = set()
    kind = phonenumbers.number_type(parsed) if valid else PhoneNumberType.UNKNOWN
    special = _TYPE_CLASS.get(kind)
    if region != home:
        found.add(NumberClass.INTERNATIONAL)
        if special is NumberClass.PREMIUM_RATE:
            found.add(special)
        main = special if special is NumberClass.PREMIUM_RATE else NumberClass.INTERNATIONAL
        return Classified(e164, main, frozenset(found), region)
    if special is not None:
        return Classified(e164, special, frozenset({special}), region)
    if kind in _GEOGRAPHIC and home_area is not None and _area_code(e164) == home_area:
        return Classified(e164, NumberClass.LOCAL, frozenset({NumberClass.LOCAL}), region)
    return Classified(e164, NumberClass.NATIONAL, frozenset({NumberClass.NATIONAL}), region)
