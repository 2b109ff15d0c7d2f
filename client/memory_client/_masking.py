"""Masking of personal data before anything is stored: detectors, overlap resolution, redact or keyed hash.

Each detector finds candidates with a regular expression and then validates them (Luhn and issuer prefixes for
card numbers, ISO 7064 mod 97 and the country's length for IBANs, `ipaddress` for IPs, SSN area/group/serial
rules, `phonenumbers` for phone numbers) so arbitrary digit runs, dates and version numbers are left alone.
Only counts per detector leave this module; never the values. Recall and false positives on a labelled corpus:
BENCHMARKS.md ("Masking recall").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import phonenumbers

__all__ = ["MaskResult", "Masker"]


_DOUBLING: Final = bytes.maketrans(b"0123456789", b"0246813579")  # a digit doubled, minus 9 when over 9
_NOT_DIGIT: Final = re.compile(r"\D")
_DIGIT_GROUP: Final = re.compile(r"\d+")


def _luhn(digits: str) -> bool:
    if not digits.isascii():  # other scripts' decimal digits (\d matches them): their values, in ASCII
        digits = "".join(str(int(c)) for c in digits)
    return _luhn_ascii(digits.encode())


def _luhn_ascii(data: bytes) -> bool:
    total = sum(data[-1::-2]) + sum(data[-2::-2].translate(_DOUBLING)) - 48 * len(data)  # 48: ord("0")
    return total % 10 == 0


# First digits a card number of each short length can start with (12: Maestro; 13: Visa, Maestro; 14: Diners,
# Maestro; 15: UATP, JCB 1800/2131, Amex, Maestro). 16 to 19 digits: any, as Luhn alone has always decided.
_CARD_FIRST_DIGITS: Final = {12: "56", 13: "456", 14: "356", 15: "12356"}


_SHORT_GROUP: Final = re.compile(r"(?:^|[ -])\d{1,3}[ -]")  # a group of fewer than four digits, not the last


def _card(text: str, start: int, end: int) -> bool:
    match = text[start:end]
    if match.isascii():  # the usual case: the digits as bytes in one step
        data = match.encode().translate(None, b" -")
        if not (12 <= len(data) <= 19 and _luhn_ascii(data)):
            return False
        if len(data) == 16 and (len(match) == 16 or (match[4] in " -" and match[4] == match[9] == match[14])):
            return _whole(text, start, end)  # the usual card: 16 digits, alone or in fours
        digits = data.decode()
    else:
        digits = match.replace(" ", "").replace("-", "")
        if not (12 <= len(digits) <= 19 and _luhn(digits)):
            return False
        digits = "".join(str(int(c)) for c in digits)
    if len(digits) < 16 and digits[0] not in _CARD_FIRST_DIGITS[len(digits)] and not digits.startswith("0604"):
        return False  # 0604: a Maestro range
    return _whole(text, start, end) and (len(digits) == len(match) or _SHORT_GROUP.search(match) is None)


def _whole(text: str, start: int, end: int) -> bool:
    """Not part of a longer grouped number (a tracking number): no digit group right before or after."""
    if end + 1 < len(text) and text[end] in " -" and text[end + 1].isdigit():
        return False
    return not (start >= 2 and text[start - 1] in " -" and text[start - 2].isdigit())


# The length of an IBAN by country (the SWIFT IBAN registry), so an IBAN followed by capitals or digits (a
# currency, a reference) is cut where it ends instead of being read as one longer, invalid candidate.
_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def _iban(text: str, start: int, end: int) -> bool:
    compact = text[start:end].replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ip(text: str, start: int, end: int) -> bool:
    match = text[start:end]
    # "::" alone, or "::" and one group ("a[::2]", "std::1"), is code far more often than an address; "::1" is not.
    if ":" in match and match != "::1" and len([g for g in re.split(r"[:.]", match) if g]) < 2:
        return False
    if start >= 2 and text[start - 1] == "[" and text[start - 2].isalnum():  # an index or a slice: "a[::1]"
        return False
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


_SSN_CONTEXT: Final = re.compile(r"(?i)\b(?:ssn|social security|soc\.? ?sec|ss ?(?:#|no\b|number))")


def _ssn(text: str, start: int, end: int) -> bool:
    if text[start + 3].isdigit():  # nine digits in a row: an SSN only where the text says so
        return _SSN_CONTEXT.search(text, max(0, start - 40), min(len(text), end + 30)) is not None
    # spaced 3 2 4: not when the spaced run goes on (a longer grouped number)
    return not (text[start + 3] == " " and re.match(r" \d", text[end : end + 2]) is not None)


# Phone numbers. A candidate is a run of digit groups (separated by " .-" and parentheses, as in "+44 (0)20 7946
# 0958" or "(0161) 4960066"), with an optional "+" and extension; it is masked, extension included, when
# `phonenumbers` finds it a possible number: in international form (+ or 00) for its country, in national form
# for one of `_PHONE_REGIONS`. Shapes that phone numbers do not take are refused first (dates, dotted versions,
# a last group of one digit); a number written without separators, which is as often an id or an amount, only
# where the words before it speak of a phone; a national-form number not after words that name something else
# (an order, an invoice, a version) nor before a currency.
_PHONE_MIN_DIGITS: Final = 8  # the fewest digits a phone number has, with its area code ("08-17 06 69")
_PHONE_MAX_DIGITS: Final = 15  # E.164, country code included (a national "(0)" adds one)
_PHONE_REGIONS: Final = (
    "US", "GB", "IN", "FR", "DE", "SE", "PL", "ES", "IT", "NL", "BR", "AU", "IE", "BE", "CH", "AT", "PT",
)  # fmt: skip
_PHONE_EXTENSION: Final = re.compile(r"(?i) ?(?:x|ext\.?|extension|#) ?\d{1,6}$")
_PHONE_WORDS: Final = re.compile(
    r"(?i)(?:phone|\btel\b|\btél|tele|mobil|\bcell|\bfax|\bcall|\bring|reach|contact|number|whatsapp|\bsms"
    r"|\btext\b|\bdial|hotline|helpline|landline|portable|appel|joindre|joignable|handy|rufnummer|anruf|nummer"
    r"|erreichbar|numer|kom[oó]rk|zadzwo|m[oó]vil|llam|cellulare|chiam|bel me|bellen|celular|ligu|ligar"
    r"|contato|contatto|n[°º])"
)
_NOT_PHONE_WORDS: Final = re.compile(  # one of the last three words before the number
    r"(?i)(?<!\w)(?:(?:order|invoice|factur|rechnung|ticket|tracking|parcel|shipment|serial|build|version|release"
    r"|receipt|transaction|batch|booking|confirmation|account|konto|bestell|commande|pedido|ordine|zam[oó]wien"
    r"|reference|social security)\w*|isbn|sku|ref|case|part|po|id|lot|ssn)\b(?:\W+\w+){0,2}\W*$"
)
_CURRENCY_AFTER: Final = re.compile(r"(?i) ?(?:€|\$|£|eur\b|usd\b|gbp\b|kr\b|sek\b|z[łl]|pln\b|r\$|brl\b|inr\b|₹|chf)")
_IPV4_SHAPE: Final = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_YEARS: Final = re.compile(r"(?:19|20)\d\d-(?:19|20)\d\d")
_DATE_START: Final = re.compile(r"\(?(?:(?:19|20)\d\d[-./ ]\d\d?[-./ ]\d\d?|\d\d?[-./]\d\d?[-./](?:19|20)\d\d)(?!\d)")


def _phone(text: str, start: int, end: int) -> bool:
    match = text[start:end]
    extension = _PHONE_EXTENSION.search(match)
    main = match[: extension.start()] if extension else match
    groups = _DIGIT_GROUP.findall(main)
    digits = "".join(groups)
    if not _PHONE_MIN_DIGITS <= len(digits) <= _PHONE_MAX_DIGITS or len(groups[-1]) < 2:
        return False
    if sum(len(g) == 1 for g in groups) > 2:  # "+33 1 …" and "(0)" have one or two; a list of counts has more
        return False
    if "." in main and (min(map(len, groups)) < 2 or _IPV4_SHAPE.fullmatch(main)):
        return False  # a version or an IPv4 lookalike
    if _DATE_START.match(main) or _YEARS.fullmatch(main):
        return False
    international = main.startswith("+") or digits.startswith("00")
    if not main.startswith("+"):
        if not international and len(digits) > (12 if digits[0] == "0" else 11):  # longer only with a country code
            return False
        before = text[max(0, start - 40) : start]
        if _NOT_PHONE_WORDS.search(before) or _CURRENCY_AFTER.match(text, end):
            return False
        if len(groups) == 1 and not extension and not _PHONE_WORDS.search(text, max(0, start - 40), end + 30):
            return False  # digits alone: a phone number where the words around it say so
    return _possible_phone(main, digits, international)


def _possible_phone(main: str, digits: str, international: bool) -> bool:
    national = ((main, region) for region in _PHONE_REGIONS)
    candidates: Iterable[tuple[str, str | None]] = national
    if main.startswith("+"):
        candidates = [(main, None)]
    elif international:  # "00" dials abroad from most countries; where it does not, the number is national
        candidates = itertools.chain([("+" + digits[2:], None)], national)
    for number, region in candidates:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return True
    return False


_SHAPE: Final = bytes.maketrans(b"0123456789" + string.ascii_uppercase.encode(), b"0" * 10 + b"A" * 26)
_IBAN_START: Final = re.compile(r"[A-Z]{2}\d\d")
_SSN_SHAPE: Final = re.compile(r"\d[- ]\d|\d{9}")
_IPV4_DOT: Final = re.compile(r"\d\.\d")


class _Outline(NamedTuple):
    """What the scans may use, worked out once per text: which detectors can match at all, and the shape."""

    possible: set[str]  # names of the detectors whose pattern's characters (other than digits) the text has
    digits: int  # how many digits (what `\d` matches) the text holds
    shape: bytes | None  # ASCII text with every digit turned into "0" and every capital into "A"; None otherwise

    def digits_in(self, text: str, start: int, end: int) -> int:
        return self.shape.count(b"0", start, end) if self.shape is not None else _count_digits(text[start:end])


def _count_digits(text: str) -> int:
    """What `\\d` matches, counted (in C for ASCII text, the usual case)."""
    if text.isascii():
        return len(text) - len(text.encode().translate(None, b"0123456789"))
    return sum(c.isdigit() for c in text)


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
        iban, ipv4 = shape.find(b"AA00") != -1, shape.find(b"0.0") != -1
        ssn = digits >= 9 and (shape.find(b"0-0") != -1 or shape.find(b"0 0") != -1 or shape.find(b"000000000") != -1)
    else:
        digits = _count_digits(text)
        iban, ssn, ipv4 = (p.search(text) is not None for p in (_IBAN_START, _SSN_SHAPE, _IPV4_DOT))
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


def _scan_ibans(detector: _Detector, text: str, _: _Outline, __: Sequence[Taken]) -> list[Span]:
    """The IBANs in the pattern's matches, validated: each match cut at its country's IBAN length where that ends
    a word and passes mod 97, else at the longest end of a group that does (Faker's and some banks' IBANs are not
    of the registry's length)."""
    spans: list[Span] = []
    cursor = 0
    while (match := detector.pattern.search(text, cursor)) is not None:
        start, end = match.span()
        cursor = end
        length = _IBAN_LENGTHS.get(match[0][:2])
        if length is not None:
            cut, seen = start, 0
            while seen < length and cut < end:  # walk to the length-th character that is not a space
                seen += text[cut] != " "
                cut += 1
            if seen == length and not (cut < len(text) and text[cut].isalnum()) and _iban(text, start, cut):
                spans.append((start, cut))
                cursor = cut
                continue
        # not of its country's length (or no IBAN there): the longest part ending a word that passes mod 97
        ends = [end, *(i for i in range(end - 1, start + 15, -1) if text[i] == " ")]
        valid = (e for e in ends if not (e < len(text) and text[e].isalnum()) and _iban(text, start, e))
        if (longest := next(valid, None)) is not None:
            spans.append((start, longest))
            cursor = longest
    return spans


@dataclass(frozen=True)
class _Detector:
    name: str
    label: str
    pattern: re.Pattern[str]
    # Given the text and a match's span (so it may look at the words around it): mask it? None: every match.
    valid: Callable[[str, int, int], bool] | None
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
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}"),
        None,  # the scan validates: where an IBAN ends depends on its checksum
        _scan_ibans,
        min_digits=2,
    ),
    # "\d(?<![\w+-]\d)" is "(?<![\w+-])\d" written digit first, so the engine skips to digits in C instead of
    # trying the lookbehind at every position (the whole scan costs about half).
    _Detector(
        "payment_card",
        "CARD",
        re.compile(r"\d(?<![\w+-]\d)(?:[ -]?\d){11,18}(?![\w-])"),
        _card,
        ascii_pattern=re.compile(rb"0(?<![\w+-]0)(?:[ -]?0){11,18}(?![\w-])"),
        min_digits=12,
    ),
    _Detector(
        "ssn",
        "SSN",
        re.compile(r"(?<![\w+.-])(?<!\d )(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])"),
        _ssn,
        min_digits=9,
    ),
    _Detector(
        "ip_address",
        "IP",
        re.compile(
            r"(?<![\w.:-])(?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?(?!\w|:(?!\d)|\.\w)"
            r"|(?<![\w.-])\d{1,3}(?:\.\d{1,3}){3}(?![\w-]|\.\w)"
        ),
        _ip,
    ),
    _Detector(
        "phone",
        "PHONE",
        re.compile(
            r"(?<![\w@+#/.,-])(?<!\d:)(?:\(\+?\d{1,5}\)[ .-]?|\+ ?)?\d++(?:[ .()-]{1,3}+\d++)*+"
            r"(?i: ?(?:x|ext\.?|extension|\#) ?\d{1,6})?(?![\w@]|[.,:/-]\w)"
        ),
        _phone,
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
        taken = self._find(text)
        if not taken:
            return text, {}
        out: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for start, end, detector in taken:
            out += [text[cursor:start], self._replacement(detector, text[start:end])]
            counts[detector.name] = counts.get(detector.name, 0) + 1
            cursor = end
        out.append(text[cursor:])
        return "".join(out), counts

    def _find(self, text: str) -> list[Taken]:
        """The spans to mask, by start, each with its detector (the corpus test and benchmark score these)."""
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
                    if detector.valid is None or detector.valid(text, start, end):
                        taken.append((start, end, detector))
                        free -= outline.digits_in(text, start, end)
        taken.sort()  # by start: spans taken never overlap, so starts differ and detectors are never compared
        return taken
