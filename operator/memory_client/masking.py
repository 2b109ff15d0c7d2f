"""Masking of personal data before anything is stored: detectors, overlap resolution, redact or keyed hash.

Each detector finds candidates with a regular expression and then validates them (Luhn for card numbers,
ISO 7064 mod 97 for IBANs, `ipaddress` for IPs, SSN area/group/serial rules) so arbitrary digit runs,
dates and version numbers are left alone. Only counts per detector leave this module; never the values.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["MaskResult", "Masker"]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _iban(match: str) -> bool:
    compact = match.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _phone(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    # A bare run of digits is more often an id or an amount than a phone number: require a + or a separator.
    return 10 <= len(digits) <= 15 and (match.startswith("+") or bool(re.search(r"[ ().-]", match)))


def _always(_: str) -> bool:
    return True


def _digits(n: int) -> Callable[[str, int], bool]:
    return lambda _, digits: digits >= n


def _anything(_: str, __: int) -> bool:
    return True


@dataclass(frozen=True)
class _Detector:
    name: str
    label: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]
    # A cheap test that the text could hold a match at all: most messages hold no personal data, and the
    # lookaround patterns cost ~10 us each per message.
    maybe: Callable[[str, int], bool] = _anything  # (text, number of digits in it)


# Order is priority when matches overlap (an email's digits are not a phone number; a card is not a phone).
_DETECTORS: Final = (
    _Detector(
        "email",
        "EMAIL",
        re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        _always,
        lambda text, _: "@" in text,
    ),
    _Detector("iban", "IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban, _digits(2)),
    _Detector("payment_card", "CARD", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card, _digits(13)),
    _Detector(
        "ssn",
        "SSN",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        _always,
        _digits(9),
    ),
    _Detector(
        "ip_address",
        "IP",
        re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])"),
        _ip,
        lambda text, digits: digits > 0 and ("." in text or ":" in text),
    ),
    _Detector(
        "phone",
        "PHONE",
        re.compile(r"(?<![\w+])\+?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?(?:\(\d{1,4}\)|\d{2,4})){2,5}(?![\w])"),
        _phone,
        _digits(10),
    ),
)


@dataclass(frozen=True)
class MaskResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Masker:
    """Replaces what the enabled detectors find with ``[LABEL]`` or, given a key, ``[LABEL:<keyed hash>]``.

    The keyed hash (HMAC-SHA256, 12 hex digits) lets equal values be correlated without being revealed;
    without the tenant key nobody can test a guess against it.
    """

    def __init__(self, detectors: Iterable[str], hash_key: bytes | None = None) -> None:
        wanted = set(detectors)
        self._detectors = tuple(d for d in _DETECTORS if d.name in wanted)
        self._key = hash_key

    @property
    def enabled(self) -> bool:
        return bool(self._detectors)

    def _replacement(self, detector: _Detector, value: str) -> str:
        if self._key is None:
            return f"[{detector.label}]"
        digest = hmac.new(self._key, f"{detector.name}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{detector.label}:{digest[:12]}]"

    def mask(self, text: str) -> MaskResult:
        if not self._detectors:
            return MaskResult(text)
        taken: list[tuple[int, int, _Detector]] = []
        digits = sum(c.isdigit() for c in text)
        for detector in self._detectors:
            if not detector.maybe(text, digits):
                continue
            for match in detector.pattern.finditer(text):
                start, end = match.span()
                if any(start < e and s < end for s, e, _ in taken) or not detector.valid(match.group()):
                    continue
                taken.append((start, end, detector))
        if not taken:
            return MaskResult(text)
        taken.sort(key=lambda t: t[0])
        out: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for start, end, detector in taken:
            out += [text[cursor:start], self._replacement(detector, text[start:end])]
            counts[detector.name] = counts.get(detector.name, 0) + 1
            cursor = end
        out.append(text[cursor:])
        return MaskResult("".join(out), counts)
