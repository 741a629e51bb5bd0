"""Money for roadmap pledges: ISO 4217 currency codes and exact amounts.

An amount crosses every interface as a **decimal string in the currency's major
unit** (``"12500.00"`` EUR, ``"300"`` JPY) and is stored as an integer count of
the currency's minor unit (cents, ...), so sums per currency are exact. A pledge
never mixes currencies: totals are kept per currency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from core.model.errors import InvalidInputError

#: digits after the decimal point, per active ISO 4217 code (exponent 2 unless listed)
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS "
    "VED VES WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCIES: Mapping[str, int] = {
    code: exponent
    for codes, exponent in (
        (_EXPONENT_0, 0),
        (_EXPONENT_2, 2),
        (_EXPONENT_3, 3),
        (_EXPONENT_4, 4),
    )
    for code in codes.split()
}
#: whole units at most (keeps minor units inside a 64-bit integer for every exponent)
MAX_WHOLE_DIGITS = 12
_AMOUNT = re.compile(rf"(\d{{1,{MAX_WHOLE_DIGITS}}})(?:\.(\d+))?")


def currency(code: str) -> str:
    """``code`` as an active ISO 4217 currency code (upper case), or a clear error."""
    normalized = code.strip().upper()
    if normalized not in CURRENCIES:
        raise InvalidInputError(
            "currency",
            f"{code!r} is not an ISO 4217 currency code; use a three-letter code such as "
            "EUR, USD, GBP or JPY",
        )
    return normalized


def parse_amount(text: str, code: str) -> int:
    """A positive decimal string in ``code``'s major unit -> minor units.
    ``"12500.5"`` EUR -> 1250050; more decimals than the currency has is refused."""
    exponent = CURRENCIES[currency(code)]
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise InvalidInputError(
            "amount",
            f"{text!r} is not an amount: write a positive decimal number such as "
            f"'12500' or '12500.{'0' * exponent}' (at most {MAX_WHOLE_DIGITS} digits "
            "before the point, no sign, no thousands separators)",
        )
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise InvalidInputError(
            "amount",
            f"{text!r} has {len(fraction)} decimals; {code.upper()} has {exponent}",
        )
    minor = int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or 0)
    if minor <= 0:
        raise InvalidInputError("amount", "a pledge is a positive amount")
    return minor


def format_amount(minor: int, code: str) -> str:
    """Minor units -> the decimal string in the major unit (``1250050`` EUR -> ``"12500.50"``)."""
    exponent = CURRENCIES[code]
    if exponent == 0:
        return str(minor)
    whole, fraction = divmod(minor, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def totals(amounts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(currency, minor units) pairs -> the sum per currency, sorted by code."""
    out: dict[str, int] = {}
    for code, minor in amounts:
        out[code] = out.get(code, 0) + minor
    return dict(sorted(out.items()))
