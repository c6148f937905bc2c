"""Number classes of outside numbers (phonenumbers types and regions) over numbers of
several countries, called from several home countries."""

from __future__ import annotations

import pytest

from config.calling import NumberClass as C
from softswitch.security.tollfraud_classes import area_code, classify

SAN_FRANCISCO = area_code("+14155550111")

CASES = [
    # (number, home region, home area, main class, every class, region)
    ("+14155550100", "US", SAN_FRANCISCO, C.LOCAL, {C.LOCAL}, "US"),
    ("+16505550123", "US", SAN_FRANCISCO, C.NATIONAL, {C.NATIONAL}, "US"),
    ("+16505550123", "US", None, C.NATIONAL, {C.NATIONAL}, "US"),
    ("+19005550123", "US", SAN_FRANCISCO, C.PREMIUM_RATE, {C.PREMIUM_RATE}, "US"),
    ("+18005550123", "US", SAN_FRANCISCO, C.TOLL_FREE, {C.TOLL_FREE}, "US"),
    ("+18765550123", "US", SAN_FRANCISCO, C.INTERNATIONAL, {C.INTERNATIONAL}, "JM"),
    ("+16135550123", "US", SAN_FRANCISCO, C.INTERNATIONAL, {C.INTERNATIONAL}, "CA"),
    ("+442079460000", "US", SAN_FRANCISCO, C.INTERNATIONAL, {C.INTERNATIONAL}, "GB"),
    ("+448712345678", "US", None, C.PREMIUM_RATE, {C.PREMIUM_RATE, C.INTERNATIONAL}, "GB"),
    ("+442079460000", "GB", None, C.NATIONAL, {C.NATIONAL}, "GB"),
    ("+442079460000", "GB", area_code("+442071234567"), C.LOCAL, {C.LOCAL}, "GB"),
    ("+447400123456", "GB", None, C.MOBILE, {C.MOBILE}, "GB"),
    ("+449098790000", "GB", None, C.PREMIUM_RATE, {C.PREMIUM_RATE}, "GB"),
    ("+448001234567", "GB", None, C.TOLL_FREE, {C.TOLL_FREE}, "GB"),
    ("+33612345678", "FR", None, C.MOBILE, {C.MOBILE}, "FR"),
    ("+33810123456", "FR", None, C.SHARED_COST, {C.SHARED_COST}, "FR"),
    ("+33612345678", "DE", None, C.INTERNATIONAL, {C.INTERNATIONAL}, "FR"),
    ("+4930123456", "DE", None, C.NATIONAL, {C.NATIONAL}, "DE"),
    ("+491701234567", "DE", None, C.MOBILE, {C.MOBILE}, "DE"),
    ("+61412345678", "AU", None, C.MOBILE, {C.MOBILE}, "AU"),
    ("+819012345678", "US", None, C.INTERNATIONAL, {C.INTERNATIONAL}, "JP"),
    ("+881631234567", "US", None, C.SATELLITE, {C.SATELLITE, C.INTERNATIONAL}, "001"),
    ("+8821612345678", "GB", None, C.SATELLITE, {C.SATELLITE, C.INTERNATIONAL}, "001"),
    ("+870772345678", "DE", None, C.SATELLITE, {C.SATELLITE, C.INTERNATIONAL}, "001"),
    # Numbers phonenumbers cannot vouch for: their country code decides.
    ("+12345", "US", None, C.NATIONAL, {C.NATIONAL}, "US"),
    ("+4990012345678", "US", None, C.INTERNATIONAL, {C.INTERNATIONAL}, "DE"),
    ("not a number", "US", None, C.INTERNATIONAL, {C.INTERNATIONAL}, ""),
]


@pytest.mark.parametrize(("number", "home", "area", "main", "classes", "region"), CASES)
def test_classify(
    number: str, home: str, area: str | None, main: C, classes: set[C], region: str
) -> None:
    found = classify(number, home, area)
    assert (found.main, set(found.classes), found.region) == (main, classes, region)


def test_area_codes() -> None:
    assert area_code("+14155550111") == "1415"
    assert area_code("+442071234567") == "4420"
    assert area_code("+447400123456") is None  # a mobile number has no area
    assert area_code("nonsense") is None
