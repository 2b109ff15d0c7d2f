"""The masker on the labelled corpus (fixtures/pii_corpus.jsonl, made by bench/make_pii_corpus.py), and each miss
and false positive that corpus found in the masker before, as a regression test named for it."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from memory_client import MASKING_DETECTORS, Masker

CORPUS = Path(__file__).parent / "fixtures" / "pii_corpus.jsonl"
ALL = Masker(MASKING_DETECTORS)
MIN_RECALL = 0.97
MAX_NEGATIVES_FLAGGED = 0.03


@cache
def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def _found(row: dict[str, Any], entity: dict[str, Any]) -> bool:
    """Masked whole, by the detector of its type."""
    return any(
        s <= entity["start"] and entity["end"] <= e and d.name == entity["type"] for s, e, d in ALL._find(row["text"])
    )


def test_the_corpus_is_as_large_as_promised() -> None:
    rows = corpus()
    types = Counter(e["type"] for r in rows for e in r["entities"])
    assert set(types) == set(MASKING_DETECTORS) and sum(types.values()) >= 2000
    assert sum(not r["entities"] for r in rows) >= 1000
    assert len({e["locale"] for r in rows for e in r["entities"] if e["type"] == "phone"}) >= 8


@pytest.mark.parametrize("detector", MASKING_DETECTORS)
def test_recall_on_the_corpus_is_at_least_97_percent(detector: str) -> None:
    entities = [(r, e) for r in corpus() for e in r["entities"] if e["type"] == detector]
    missed = [r["text"][e["start"] : e["end"]] for r, e in entities if not _found(r, e)]
    assert 1 - len(missed) / len(entities) >= MIN_RECALL, missed[:20]


def test_at_most_3_percent_of_negative_sentences_are_flagged() -> None:
    negatives = [r["text"] for r in corpus() if not r["entities"]]
    flagged = [text for text in negatives if ALL.apply(text)[1]]
    assert len(flagged) / len(negatives) <= MAX_NEGATIVES_FLAGGED, flagged[:20]


def test_no_entity_is_masked_in_part() -> None:
    """An entity is masked whole or left alone: a masked span never cuts one (what is left would leak digits)."""
    cut = []
    for row in corpus():
        spans = ALL._find(row["text"])
        for e in row["entities"]:
            overlapping = [(s, end) for s, end, _ in spans if s < e["end"] and e["start"] < end]
            if overlapping and not any(s <= e["start"] and e["end"] <= end for s, end in overlapping):
                cut.append(row["text"][e["start"] : e["end"]])
    assert cut == []


def test_masked_output_never_holds_a_found_entity_nor_its_extension() -> None:
    leaks = []
    for row in corpus():
        masked = ALL.apply(row["text"])[0]
        for e in row["entities"]:
            value = row["text"][e["start"] : e["end"]]
            if not _found(row, e):
                continue
            extension = re.search(r"(?:x|ext\.?) ?(\d+)$", value) if e["type"] == "phone" else None
            if value in masked or (extension and re.search(rf"(?<!\d){extension[1]}(?!\d)", masked)):
                leaks.append((value, masked))
    assert leaks == []


def _masked(text: str) -> dict[str, int]:
    return ALL.apply(text)[1]


# Misses the corpus found in the masker as it was.
def test_ipv4_at_the_end_of_a_sentence_is_masked() -> None:
    assert ALL.apply("The request came from 203.0.113.7.") == ("The request came from [IP].", {"ip_address": 1})


def test_ipv4_followed_by_a_port_is_masked_and_the_port_kept() -> None:
    assert ALL.apply("Connect to 10.1.2.3:8443 now")[0] == "Connect to [IP]:8443 now"


@pytest.mark.parametrize("address", ["2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:db8::", "::1"])
def test_compressed_ipv6_is_masked(address: str) -> None:
    assert ALL.apply(f"from {address}, again")[0] == "from [IP], again"


def test_ipv4_mapped_ipv6_is_masked_whole() -> None:
    assert ALL.apply("Client IP: ::ffff:192.0.2.128")[0] == "Client IP: [IP]"


def test_full_ipv6_followed_by_a_port_is_masked() -> None:
    assert ALL.apply("Connect to 2001:db8:0:0:1:0:0:1:8443 now")[1] == {"ip_address": 1}


@pytest.mark.parametrize(
    "number", ["206.269.0743x9150", "+1-780-563-6083x7783", "(591)341-7776 ext. 12", "020 7946 0958 ext 4411"]
)
def test_a_phone_number_with_an_extension_is_masked_whole(number: str) -> None:
    assert ALL.apply(f"Call {number} today.") == ("Call [PHONE] today.", {"phone": 1})


def test_single_digit_groups_after_the_country_code_are_a_phone_number() -> None:
    assert ALL.apply("call +33 1 58 75 73 70")[0] == "call [PHONE]"


@pytest.mark.parametrize("number", ["+44 (0)20 7946 0958", "+49 (0) 9141 777631", "+46 (0)8 123 456 78"])
def test_a_trunk_prefix_in_parentheses_is_part_of_the_phone_number(number: str) -> None:
    assert ALL.apply(f"ring {number}.")[0] == "ring [PHONE]."


@pytest.mark.parametrize(
    "number",
    [
        "04 15 39 15 00",  # fr_FR
        "08-391 50 00",  # sv_SE
        "0353-37 40 68",
        "609 141 777",  # pl_PL
        "(591)341-7776",  # en_US
        "797-386-9073",
        "(0161) 4960066",  # en_GB
        "(03449) 78690",  # de_DE
        "(0406)-812415",  # nl_NL
        "12 3915-0008",  # pt_BR
    ],
)
def test_national_phone_formats_are_masked(number: str) -> None:
    assert _masked(f"My number is {number}.") == {"phone": 1}


@pytest.mark.parametrize("number", ["9141777631", "08124158683", "0925141776"])  # en_IN, en_IN, it_IT
def test_a_phone_number_without_separators_is_masked_where_the_words_say_phone(number: str) -> None:
    assert _masked(f"My mobile is {number}.") == {"phone": 1}
    assert _masked(f"id {number}") == {}


@pytest.mark.parametrize("ssn", ["536 22 8726", "536228726"])
def test_an_ssn_without_dashes_is_masked(ssn: str) -> None:
    assert ALL.apply(f"SSN {ssn} on file")[0] == "SSN [SSN] on file"


def test_nine_bare_digits_are_an_ssn_only_where_the_text_says_so() -> None:
    assert _masked("ticket 536228726") == {}


@pytest.mark.parametrize("number", ["639085878408", "5018 1234 5673", "6304-0000-0000"])
def test_a_12_digit_maestro_card_is_masked(number: str) -> None:
    assert _masked(f"card {number} please") == {"payment_card": 1}


def test_a_12_digit_luhn_number_of_no_maestro_prefix_is_not_a_card() -> None:
    assert _masked("FedEx 7000 0000 0002 is out") == {}


def test_an_iban_followed_by_a_currency_code_is_masked_without_it() -> None:
    assert ALL.apply("Wire it to DE89 3704 0044 0532 0130 00 EUR account")[0] == "Wire it to [IBAN] EUR account"


# False positives the corpus found in the masker as it was.
@pytest.mark.parametrize("text", ["Upgraded to 1.2.3.4-beta", "release 2.0.1.7-rc1 is out", "Windows 10.0.19045.2965"])
def test_a_version_string_is_not_an_ip_address_nor_a_phone_number(text: str) -> None:
    assert _masked(text) == {}


@pytest.mark.parametrize(
    "text",
    ["Your order 2024-118-5521 has shipped.", "Order #112-3456789-1234567 was refunded", "ref. 4471-2290-113, see"],
)
def test_a_dashed_order_number_is_not_a_phone_number(text: str) -> None:
    assert _masked(text) == {}


@pytest.mark.parametrize(
    "text", ["meeting on 2024-01-15 at 10:30:00", "Last seen 2024-01-15 10:30", "15.01.2024 10:30 Uhr Termin"]
)
def test_the_date_and_hour_of_a_timestamp_are_not_a_phone_number(text: str) -> None:
    assert _masked(text) == {}


@pytest.mark.parametrize("text", ["a bare :: in the text", "slice it with a[::2] and b[1::]", "use std::vector"])
def test_a_bare_double_colon_is_not_an_ip_address(text: str) -> None:
    assert _masked(text) == {}


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 978-3-16-148410-0",
        "Years 2001-2023 and more",
        "FedEx 7871 3978 8930 is out for delivery",
        "USPS 9400 1000 0000 0000 0000 00",
        "The flat costs 12 345 678 €.",
        "SSN 000-21-6917 is not issued",
        "address 275.150.94.137 is out of range",
        "DHL JD424024212763445025 delayed",
    ],
)
def test_other_lookalikes_are_left_alone(text: str) -> None:
    assert _masked(text) == {}
