"""Masking tables (true positives and near misses), keyed hashing, and properties of the detectors."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from memory_client import MASKING_DETECTORS, Keyring, Masker
from memory_client._masking import _DETECTORS, _Detector, _luhn, _Outline, _outline, _scan_ibans
from memory_sandbox.engine import Engine

from .conftest import Provisioner, keyring_json

ALL = Masker(MASKING_DETECTORS)

TRUE_POSITIVES = [
    ("write to jane.doe+work@example.co.uk today", "email"),
    ("call +44 20 7946 0958", "phone"),
    ("call (415) 555-0132", "phone"),
    ("call 415.555.0132", "phone"),
    ("SSN 123-45-6789", "ssn"),
    ("card 4111 1111 1111 1111", "payment_card"),
    ("card 5500-0000-0000-0004", "payment_card"),
    ("card 378282246310005", "payment_card"),
    ("IBAN DE89 3704 0044 0532 0130 00", "iban"),
    ("IBAN GB82WEST12345698765432", "iban"),
    ("from 192.168.10.254", "ip_address"),
    ("from 2001:db8::8a2e:370:7334", "ip_address"),
    ("from fe80::abcd", "ip_address"),
]

NEAR_MISSES = [
    "order 1234567890123456 shipped",  # 16 digits failing Luhn
    "card 4111 1111 1111 1112",  # one digit off: Luhn fails
    "SSN 000-12-3456",  # area 000 is never issued
    "SSN 666-12-3456",
    "SSN 123-00-6789",
    "ticket 123456789",  # bare nine digits: an id, not an SSN
    "meeting on 2024-01-15 at 10:30:00",
    "version 1.2.3 and 999.1.1.1",
    "IBAN DE89 3704 0044 0532 0130 01",  # checksum fails
    "total 1,234.56 EUR, ratio 3:4:5",
    "user@localhost without a domain",
    "call 5550132",
    "id 1234567890",  # a bare 10-digit number is more often an id
]


@pytest.mark.parametrize(("text", "detector"), TRUE_POSITIVES)
def test_true_positive_is_masked(text: str, detector: str) -> None:
    result = ALL.mask(text)
    assert result.counts == {detector: 1}, result


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_miss_is_left_alone(text: str) -> None:
    assert ALL.mask(text).text == text


def test_only_enabled_detectors_run() -> None:
    assert Masker(["email"]).mask("a@example.com 123-45-6789").text == "[EMAIL] 123-45-6789"


def test_an_email_with_digits_is_one_email_not_a_phone() -> None:
    assert ALL.mask("reach 4155550132@example.com").counts == {"email": 1}


def test_keyed_hash_is_stable_per_value_and_differs_between_keys() -> None:
    one = Masker(["email"], Keyring.from_json(keyring_json()).masking_key())
    two = Masker(["email"], Keyring.from_json(keyring_json()).masking_key())
    a, b = one.mask("x@example.com"), one.mask("x@example.com y@example.com")
    assert a.text.startswith("[EMAIL:") and a.text in b.text
    assert one.mask("x@example.com").text != two.mask("x@example.com").text


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        digits = body + check
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(digits)))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError


def _luhn_reference(digits: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
    return total % 10 == 0


ARABIC_INDIC_DIGITS = "".join(chr(0x0660 + d) for d in range(10))


@given(st.text(alphabet="0123456789" + ARABIC_INDIC_DIGITS, min_size=1, max_size=19))
def test_luhn_agrees_with_the_textbook_definition(digits: str) -> None:
    assert _luhn(digits) == _luhn_reference(digits)


@given(st.text(alphabet="0123456789", min_size=15, max_size=15).filter(lambda s: s[0] != "0"), st.sampled_from(" -"))
def test_every_luhn_valid_16_digit_card_is_masked(body: str, sep: str) -> None:
    number = _luhn_complete(body)
    grouped = sep.join(number[i : i + 4] for i in range(0, 16, 4))
    assert ALL.mask(f"pay with {grouped} please").text == "pay with [CARD] please"


def _ungated_outline(text: str) -> _Outline:
    """Every detector possible, and digits enough for all of them however many are masked."""
    return _outline(text)._replace(possible=set(MASKING_DETECTORS), digits=10**9)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


def _iban(country: str, bban: str, grouped: bool) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if grouped else compact


_HEX = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=4)
# Shapes each detector looks for (valid or nearly so), to be mixed with noise.
_SHAPES = st.one_of(
    st.tuples(_digits(3), _digits(2), _digits(4)).map("-".join),  # SSN
    st.lists(st.integers(0, 299).map(str), min_size=4, max_size=4).map(".".join),  # IPv4 (and near misses)
    st.lists(_HEX, min_size=3, max_size=8).map(":".join),  # IPv6, incl. "::" runs
    st.tuples(
        st.sampled_from(["DE", "GB", "FR", "NL"]),
        st.text(alphabet="0123456789", min_size=11, max_size=30),
        st.booleans(),
    ).map(lambda t: _iban(*t)),  # valid IBANs, grouped or compact
    st.tuples(st.lists(_digits(4), min_size=3, max_size=5), st.sampled_from([" ", "-", ""])).map(
        lambda t: t[1].join(t[0])
    ),  # card-like
    st.tuples(
        st.sampled_from(["+", "(", ""]),
        _digits(3),
        st.sampled_from([") ", " ", "-", "."]),
        _digits(3),
        st.sampled_from([" ", "-", "."]),
        _digits(4),
    ).map("".join),  # phone-like
    st.tuples(
        st.text(alphabet="abc.1_+%é-", min_size=1, max_size=5),
        st.sampled_from(["@example.com", "@x.io", "@", "@@a.de", "@a-b.c.org"]),
    ).map("".join),  # email-like
)


_TEXTS = st.lists(
    st.one_of(
        _SHAPES,
        st.text(alphabet="0123456789 -.:+()@", max_size=8),
        st.text(alphabet="abcdefXYZ_ é٣", max_size=6),
    ),
    max_size=8,
).map("".join)


@given(_TEXTS)
# Each gate at its boundary: the fewest digits (or colons) its detector can match with.
@example("call (415) 555-0132")
@example("card 4222222222222 ok")
@example("ssn 123-45-6789")
@example("from 1.2.3.4")
@example("from fe80::1")
@example("IBAN GB61WESTABCDEFGHIJK")  # only the check digits are digits
def test_the_cheap_gates_never_change_a_result(text: str) -> None:
    """Each detector's gate is a necessary condition of its pattern: running every pattern gives the same result."""
    gated = ALL.mask(text)
    with mock.patch("memory_client._masking._outline", _ungated_outline):
        assert ALL.mask(text) == gated


PLAIN_PATTERNS = {  # the patterns as first written; the detectors' own forms are tuned for speed
    "email": r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "payment_card": r"(?<![\w+-])\d(?:[ -]?\d){11,18}(?![\w-])",
}
EXACT_SCANS = ("email", "payment_card")  # the phone scan also leaves out matches that could not be masked


@given(_TEXTS)
def test_tuned_scans_find_exactly_what_the_plain_patterns_find(text: str) -> None:
    for detector in _DETECTORS:
        if detector.name in EXACT_SCANS:
            plain = [m.span() for m in re.finditer(PLAIN_PATTERNS[detector.name], text)]
            assert list(detector.scan(detector, text, _outline(text), [])) == plain, detector.name


def _plain_scan(detector: _Detector, text: str, outline: _Outline, __: object) -> Iterator[tuple[int, int]]:
    if detector.name == "iban":  # its scan is the algorithm (where an IBAN ends), not a shortcut: run it ungated
        return iter(_scan_ibans(detector, text, outline, []))
    return (m.span() for m in re.finditer(PLAIN_PATTERNS.get(detector.name, detector.pattern.pattern), text))


PLAIN = Masker(MASKING_DETECTORS)  # the algorithm as first written: every pattern, plain finditer, no gates
PLAIN._detectors = tuple(dataclasses.replace(d, scan=_plain_scan, ascii_pattern=None) for d in PLAIN._detectors)


@given(_TEXTS)
@example("call 555 0132 or 4111 1111 1111 1111 or +44 20 7946 0958")  # short run, run inside a card, a phone
@example("card 4111 1111 1111 1111 +44 20 7946 0958")  # one run: a card, then a phone
@example("from 10.0.0.1 +1 415 555 0132")  # one run: an IP address, then a phone
@example("4111 1111 1111 1111 call 415-555-0132")  # a card, then the fewest digits a phone can have
@example("ssn 123-45-6789 card 4222222222222")  # an SSN masked, then a card with the fewest digits
def test_the_tuned_masker_masks_exactly_as_the_plain_algorithm(text: str) -> None:
    tuned = ALL.mask(text)
    with mock.patch("memory_client._masking._outline", _ungated_outline):
        assert PLAIN.mask(text) == tuned


@given(_TEXTS)
def test_ascii_forms_match_where_the_patterns_match(text: str) -> None:
    """On ASCII text, each detector's form for the text's shape finds exactly the spans its pattern finds."""
    shape = _outline(text.encode("ascii", "replace").decode()).shape
    assert shape is not None
    ascii_text = text.encode("ascii", "replace").decode()
    for detector in _DETECTORS:
        if detector.ascii_pattern is not None:
            expected = [m.span() for m in detector.pattern.finditer(ascii_text)]
            assert [m.span() for m in detector.ascii_pattern.finditer(shape)] == expected, detector.name


@given(st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=200))
def test_text_without_digits_or_at_signs_is_never_changed(text: str) -> None:
    assert ALL.mask(text).text == text


def test_masked_counts_reach_the_audit_trail_but_values_do_not(provision: Provisioner, engine: Engine) -> None:
    tenant = provision.tenant(MEMORY_MASKING="email,payment_card")
    memory = tenant.memory("alpha")
    stored = memory.conversation("c", "u1").append("human", "bob@example.com paid with 4111 1111 1111 1111")
    assert stored.content == "[EMAIL] paid with [CARD]"
    event = memory.audit_events(1)[0].fields
    assert event["action"] == "save" and event["masked"] == '{"email":1,"payment_card":1}'
    with engine.admin_client() as admin:
        trail = repr(admin.xrange(tenant.audit_key))
    assert "bob@example.com" not in trail and "4111" not in trail
