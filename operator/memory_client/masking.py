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
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import AnyStr, Final, NamedTuple

__all__ = ["MaskResult", "Masker"]


_DOUBLING: Final = bytes.maketrans(b"0123456789", b"0246813579")  # a digit doubled, minus 9 when over 9
_NOT_DIGIT: Final = re.compile(r"\D")
_PHONE_SEPARATOR: Final = re.compile(r"[ ().-]")


def _luhn(digits: str) -> bool:
    if not digits.isascii():  # other scripts' decimal digits (\d matches them): their values, in ASCII
        digits = "".join(str(int(c)) for c in digits)
    return _luhn_ascii(digits.encode())


def _luhn_ascii(data: bytes) -> bool:
    total = sum(data[-1::-2]) + sum(data[-2::-2].translate(_DOUBLING)) - 48 * len(data)  # 48: ord("0")
    return total % 10 == 0


def _card(match: str) -> bool:
    if match.isascii():  # the usual case: the digits as bytes in one step
        data = match.encode().translate(None, b" -")
        return 13 <= len(data) <= 19 and _luhn_ascii(data)
    digits = match.replace(" ", "").replace("-", "")
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


_PHONE_MIN_DIGITS: Final = 10  # the fewest digits a phone number has


def _count_digits(text: str) -> int:
    """What `\\d` matches, counted (in C for ASCII text, the usual case)."""
    if text.isascii():
        return len(text) - len(text.encode().translate(None, b"0123456789"))
    return sum(c.isdigit() for c in text)


def _phone(match: str) -> bool:
    digits = _NOT_DIGIT.sub("", match)
    # A bare run of digits is more often an id or an amount than a phone number: require a + or a separator.
    return _PHONE_MIN_DIGITS <= len(digits) <= 15 and (
        match.startswith("+") or _PHONE_SEPARATOR.search(match) is not None
    )


_SHAPE: Final = bytes.maketrans(b"0123456789" + string.ascii_uppercase.encode(), b"0" * 10 + b"A" * 26)
_IBAN_START: Final = re.compile(r"[A-Z]{2}\d\d")
_SSN_DASH: Final = re.compile(r"\d-\d")
_IPV4_DOT: Final = re.compile(r"\d\.\d")


class _Outline(NamedTuple):
    """What the scans may use, worked out once per text: which detectors can match at all, and the shape."""

    possible: set[str]  # names of the detectors whose pattern's characters (other than digits) the text has
    digits: int  # how many digits (what `\d` matches) the text holds
    shape: bytes | None  # ASCII text with every digit turned into "0" and every capital into "A"; None otherwise

    def digits_in(self, text: str, start: int, end: int) -> int:
        return self.shape.count(b"0", start, end) if self.shape is not None else _count_digits(text[start:end])


def _outline(text: str) -> _Outline:
    """Gates: a detector is tried only if the text meets necessary conditions of its pattern: these characters,
    and (see `Masker.mask`) its fewest digits outside what is masked already. Never a heuristic: tests check that
    the gates change no result. Most messages hold no personal data, and each pattern costs several microseconds
    per message where these tests cost well under one."""
    shape: bytes | None = None
    if text.isascii():  # the usual case: one C-level pass, then substring tests
        shape = text.encode().translate(_SHAPE)
        digits = shape.count(b"0")
        # find(), not `in`: the same search, through less code (it counts when caches are cold: see BENCHMARKS.md)
        iban, ssn, ipv4 = shape.find(b"AA00") != -1, shape.find(b"0-0") != -1, shape.find(b"0.0") != -1
    else:
        digits = _count_digits(text)
        iban, ssn, ipv4 = (p.search(text) is not None for p in (_IBAN_START, _SSN_DASH, _IPV4_DOT))
    possible = {"payment_card", "phone"}
    if "@" in text:
        possible.add("email")
    if iban:
        possible.add("iban")
    if ssn:
        possible.add("ssn")
    if ipv4 or text.count(":") >= 2:  # IPv4 needs a digit dot digit, IPv6 two colons
        possible.add("ip_address")
    return _Outline(possible, digits, shape)


Span = tuple[int, int]
Taken = tuple[int, int, "_Detector"]  # a span masked already, and by which detector
Scan = Callable[["_Detector", str, _Outline, Sequence[Taken]], Iterable[Span]]


def _scan(detector: _Detector, text: str, outline: _Outline, _: Sequence[Taken]) -> list[Span]:
    """Where `detector.pattern` matches, as `finditer` finds it (on an ASCII text's shape when it has a form for it)."""
    if outline.shape is not None and detector.ascii_pattern is not None:
        return [m.span() for m in detector.ascii_pattern.finditer(outline.shape)]
    return [m.span() for m in detector.pattern.finditer(text)]


def _scan_emails(detector: _Detector, text: str, _: _Outline, __: Sequence[Taken]) -> list[Span]:
    """The email pattern's `finditer`, with each search started after the last space before the next "@".

    A match holds exactly one "@" (neither part may contain one), and its local part holds no space. So the next
    match starts after the last space before the next "@" (if its "@" is that one) or after that "@" (if a later
    one): searching from there finds the same leftmost match without trying every position of the text.
    """
    spans: list[Span] = []
    cursor = 0
    while (at := text.find("@", cursor)) != -1:
        start = max(text.rfind(" ", cursor, at) + 1, cursor)
        match = detector.pattern.search(text, start)  # lookbehinds still see the text before `start`
        if match is None:
            break
        spans.append(match.span())
        cursor = match.end()
    return spans


_PHONE_RUN: Final = re.compile(r"[+(\d][\d+() .-]*")  # a maximal run of the characters a phone match is made of
_PHONE_RUN_SHAPE: Final = re.compile(rb"[+(0][0+() .-]*")  # the same in an ASCII text's shape


def _scan_phones(detector: _Detector, text: str, outline: _Outline, taken: Sequence[Taken]) -> Iterator[Span]:
    """The phone pattern's `finditer` matches that could be masked, searched only where they can be.

    A match is made of digits, "+", "(", ")", " ", ".", "-" and starts at "+", "(" or a digit, so it lies inside
    one maximal run of those characters (searched with the character after it still visible to the final
    lookahead), and runs do not affect each other. A run with fewer digits than a phone number has, or lying
    inside text already masked, can hold no match that would be masked, so it is not searched at all.
    """
    if outline.shape is not None and detector.ascii_pattern is not None:
        return _phone_spans(detector.ascii_pattern, _PHONE_RUN_SHAPE, outline.shape, text, taken)
    return _phone_spans(detector.pattern, _PHONE_RUN, text, text, taken)


def _phone_spans(
    pattern: re.Pattern[AnyStr], runs: re.Pattern[AnyStr], subject: AnyStr, text: str, taken: Sequence[Taken]
) -> Iterator[Span]:
    for run in runs.finditer(subject):
        start, end = run.span()
        if _count_digits(text[start:end]) < _PHONE_MIN_DIGITS or any(s <= start and end <= e for s, e, _ in taken):
            continue
        while (match := pattern.search(subject, start, end + 1)) is not None:
            yield match.span()
            start = match.end()


@dataclass(frozen=True)
class _Detector:
    name: str
    label: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None  # None: every match is masked
    # The pattern's match spans, left to right, as finditer finds them, or all of those that could be masked
    # (tests hold each tuned scan to the plain finditer).
    scan: Scan = _scan
    # The same pattern over an ASCII text's shape (digits "0", capitals "A"; spans are the text's): literal
    # characters instead of Unicode categories, several times cheaper. Only for patterns that never look at
    # a digit's value or a capital's letter; tests hold it to `pattern`.
    ascii_pattern: re.Pattern[bytes] | None = None
    min_digits: int = 0  # the fewest digits a match that would be masked holds


# Order is priority when matches overlap (an email's digits are not a phone number; a card is not a phone).
_DETECTORS: Final = (
    _Detector(
        "email",
        "EMAIL",
        re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        None,
        _scan_emails,
    ),
    _Detector(
        "iban",
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
        _iban,
        min_digits=2,
    ),
    # "\d(?<![\d-]\d)" is "(?<![\d-])\d" written digit first, so the engine skips to digits in C instead of
    # trying the lookbehind at every position (the whole scan costs about half).
    _Detector(
        "payment_card",
        "CARD",
        re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-])"),
        _card,
        ascii_pattern=re.compile(rb"0(?<![0-]0)(?:[ -]?0){12,18}(?![0-])"),
        min_digits=13,
    ),
    _Detector(
        "ssn",
        "SSN",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        None,
        min_digits=9,
    ),
    _Detector(
        "ip_address",
        "IP",
        re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])"),
        _ip,
    ),
    _Detector(
        "phone",
        "PHONE",
        re.compile(r"(?<![\w+])\+?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?(?:\(\d{1,4}\)|\d{2,4})){2,5}(?![\w])"),
        _phone,
        _scan_phones,
        re.compile(rb"(?<![\w+])\+?(?:\(0{1,4}\)|0{1,4})(?:[ .-]?(?:\(0{1,4}\)|0{2,4})){2,5}(?![\w])"),
        min_digits=_PHONE_MIN_DIGITS,
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
        return MaskResult(*self.apply(text))

    def apply(self, text: str) -> tuple[str, dict[str, int]]:
        """`mask()` as a plain (text, counts) pair: the append path's form, which skips building a MaskResult."""
        if not self._detectors:
            return text, {}
        taken: list[Taken] = []
        outline = _outline(text)
        free = outline.digits  # digits outside what is masked already: a later match must lie outside it
        for detector in self._detectors:
            if detector.name not in outline.possible or free < detector.min_digits:
                continue
            for start, end in detector.scan(detector, text, outline, taken):
                for s, e, _ in taken:
                    if start < e and s < end:  # overlaps what a detector of higher priority masked
                        break
                else:
                    if detector.valid is None or detector.valid(text[start:end]):
                        taken.append((start, end, detector))
                        free -= outline.digits_in(text, start, end)
        if not taken:
            return text, {}
        taken.sort()  # by start: spans taken never overlap, so starts differ and detectors are never compared
        out: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for start, end, detector in taken:
            out += [text[cursor:start], self._replacement(detector, text[start:end])]
            counts[detector.name] = counts.get(detector.name, 0) + 1
            cursor = end
        out.append(text[cursor:])
        return "".join(out), counts
