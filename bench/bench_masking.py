"""Recall, false positives and cost of the library's masker against presidio-analyzer's pattern recognisers, on the
labelled corpus tests/library/fixtures/pii_corpus.jsonl (made by bench/make_pii_corpus.py), in one run.

For each type: the share of its entities masked whole by a detector of that type (recall); for the hard-negative
sentences, the share in which anything at all is flagged; and microseconds per sentence over the whole corpus,
all six types enabled (the medians of `--rounds` passes).

presidio is run without its NLP engine (no spaCy model is loaded or needed): its pattern recognisers are called
directly as `recognizer.analyze(text, entities, nlp_artifacts=None)`, and every result with a score above 0
counts, since the context words that would raise or lower scores need the NLP engine's tokens. Its e-mail
recogniser asks tldextract for the public-suffix list, which would be downloaded; it is given the snapshot that
tldextract ships instead (`suffix_list_urls=()`), so the run needs no network. presidio's phone recogniser is
run as configured by default (regions US, UK, DE, FE, IL, IN, CA, BR) and once more with our masker's regions.

    .venv/bin/pip install -e '.[bench]'   # presidio-analyzer (and Faker, for the corpus generator)
    .venv/bin/python bench/bench_masking.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memory_client import MASKING_DETECTORS, Masker
from memory_client._masking import _PHONE_REGIONS

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "library" / "fixtures" / "pii_corpus.jsonl"
TYPES = ("email", "iban", "payment_card", "ssn", "ip_address", "phone")
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "email",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "payment_card",
    "US_SSN": "ssn",
    "IP_ADDRESS": "ip_address",
    "PHONE_NUMBER": "phone",
}
# A message with no personal data, as long as the library benchmark's (bench_library.py's PLAIN): the fast path.
PLAIN = "Customer says order 4471 was charged twice on the card on file; the refund should arrive by Friday, thanks."

Span = tuple[int, int, str]  # start, end, our type name
Finder = Callable[[str], list[Span]]


def ours() -> Finder:
    masker = Masker(MASKING_DETECTORS)
    return lambda text: [(s, e, d.name) for s, e, d in masker._find(text)]


def presidio(phone_regions: Sequence[str] | None = None) -> Finder:
    import tldextract  # noqa: PLC0415 - only with the bench extra
    from presidio_analyzer.predefined_recognizers import (  # noqa: PLC0415
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # the shipped snapshot
    phone = PhoneRecognizer() if phone_regions is None else PhoneRecognizer(supported_regions=list(phone_regions))
    recognizers = [
        EmailRecognizer(),
        IbanRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        IpRecognizer(),
        phone,
    ]

    def find(text: str) -> list[Span]:
        spans = []
        for recognizer in recognizers:
            for r in recognizer.analyze(text, recognizer.supported_entities, None):
                if r.score > 0:
                    spans.append((r.start, r.end, PRESIDIO_TYPES[r.entity_type]))
        return spans

    return find


def score(find: Finder, rows: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    found: dict[str, list[bool]] = {t: [] for t in TYPES}
    flagged = []
    for row in rows:
        spans = find(row["text"])
        if not row["entities"]:
            flagged.append(bool(spans))
        for e in row["entities"]:
            covered = any(s <= e["start"] and e["end"] <= end and t == e["type"] for s, end, t in spans)
            found[e["type"]].append(covered)
    return {t: sum(v) / len(v) for t, v in found.items()}, sum(flagged) / len(flagged)


def us_per_call(find: Finder, texts: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            find(text)
        times.append((time.perf_counter() - start) / len(texts) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    entities = sum(len(r["entities"]) for r in rows)
    negatives = sum(not r["entities"] for r in rows)
    print(f"corpus: {len(rows)} sentences, {entities} entities, {negatives} hard negatives\n")
    systems = {
        "ours (memory_client.masking)": ours(),
        "presidio pattern recognisers": presidio(),
        "presidio, phones in our regions": presidio(_PHONE_REGIONS),
    }
    header = " ".join(f"{t:>12}" for t in TYPES)
    print(f"{'recall':<32} {header} {'neg flagged':>12} {'µs/sentence':>12} {'µs plain msg':>12}")
    for name, find in systems.items():
        recall, flagged = score(find, rows)
        cost = us_per_call(find, texts, args.rounds)
        plain = us_per_call(find, [PLAIN] * 2000, args.rounds)
        cells = " ".join(f"{recall[t]:>12.1%}" for t in TYPES)
        print(f"{name:<32} {cells} {flagged:>12.1%} {cost:>12.1f} {plain:>12.1f}")


if __name__ == "__main__":
    main()
