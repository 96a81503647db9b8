"""ISO 4217: the active currency codes a price book or budget may be expressed in.

Written out rather than taken from a locale library, so validation never
depends on what happens to be installed. Funds, precious metals and testing
codes (XAU, XTS, XXX, …) are left out: nobody is billed in them.
"""
from django.core.exceptions import ValidationError

ISO_4217_ACTIVE: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)


def validate_currency(value: str) -> None:
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise ValidationError("must be an ISO 4217 code: three uppercase letters, e.g. EUR.", code="invalid_currency")
    if value not in ISO_4217_ACTIVE:
        raise ValidationError(f"{value!r} is not an active ISO 4217 currency code.", code="unknown_currency")
