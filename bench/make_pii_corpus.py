"""Writes the labelled masking corpus, tests/library/fixtures/pii_corpus.jsonl: sentences with the exact span of
each e-mail address, IBAN, payment card, SSN, IP address and phone number in them, and hard negatives.

Entities come from Faker (seeded) in eleven locales: every locale's phone formats and IBANs, cards of every brand
Faker knows (12-digit Maestro included), en_US SSNs, IPv4 and IPv6 (full, compressed, IPv4-mapped). They are
written as people write them (grouped or not, with extensions, before punctuation, in parentheses, ip:port) in
sentences where they stand at the start, in the middle or at the end. Negatives are sentences with the digits,
dots, dashes and colons that look like those and are none of them: versions, order and tracking numbers, dates,
timestamps, ISBNs, ids failing Luhn, UUIDs, hashes, a bare "::", prices, and more.

Faker's output differs between its versions, so the corpus is committed and the tests read that file; this
script regenerates it (deterministically for one Faker version):

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/make_pii_corpus.py

Each line is {"text": ..., "entities": [{"type", "start", "end", "locale", "form"}], "kind": category}, where
negatives have no entities and `kind` says what they are.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

from faker import Faker

OUT = Path(__file__).resolve().parent.parent / "tests" / "library" / "fixtures" / "pii_corpus.jsonl"
SEED = 20240611
LOCALES = ("en_US", "en_GB", "en_IN", "fr_FR", "de_DE", "sv_SE", "pl_PL", "es_ES", "it_IT", "nl_NL", "pt_BR")

# "{}" is where the entity goes. Templates put it first, in the middle, last, before punctuation, in parentheses.
PHONE_TEMPLATES = (
    "Call me on {} tomorrow morning.",
    "My number is {}.",
    "{} is the number to call if the bot fails.",
    "Please ring {}, ask for the front desk.",
    "You can reach Anna at {} (she is in until six).",
    "Phone: {}",
    "Mobile {} / office closed on Fridays",
    "Contact the landlord ({}) before you move in.",
    "The customer left {} as a callback number",
    "tel: {}; email preferred",
    "Text me at {} when you land!",
    "Their hotline {} answers in English.",
    "Spoke with Mr. Berg — {} — about the delivery.",
    "Reach support on WhatsApp: {}.",
    "Vous pouvez m'appeler au {}.",
    "Bitte rufen Sie {} an.",
    "Ring mig på {} efter lunch.",
    "Mi teléfono es el {}, llámame.",
    "Il mio numero è {}.",
    "Bel me op {} als het later wordt.",
    "Zadzwoń pod numer {} wieczorem.",
    "Meu celular é {}, pode ligar.",
    "If it rings twice, {} was the caller.",
    "Anna left the keys with the neighbour, {}, yesterday.",
)
EMAIL_TEMPLATES = (
    "Send the invoice to {} please.",
    "{} asked about the refund.",
    "Contact: {}",
    "Forwarded from <{}> on Monday",
    "Write to {}, not to the old address.",
    "The user ({}) cannot log in.",
    "mailto:{}",
    "cc {}; bcc the team",
    "Reply to {}!",
    "Her login is {} since March.",
)
IBAN_TEMPLATES = (
    "Please transfer the deposit to {}.",
    "IBAN: {}",
    "{} is the account for the refund",
    "Pay into {} (reference: invoice 2291).",
    "Our bank details: {}, BIC on request",
    "Wire the 450 EUR to {} EUR account",
    "Le virement sur {} est parti.",
    "Überweisung an {} erledigt.",
)
CARD_TEMPLATES = (
    "Charge it to {} please.",
    "My card number is {}.",
    "{} was declined twice.",
    "Card ({}) expired in May",
    "Paid with {}, expiry 04/27, CVV on request",
    "Use the card ending... no wait, the whole thing: {}!",
    "Refund to card {} by Friday",
    "Number {} - is that still on file?",
)
SSN_TEMPLATES = (
    "My SSN is {}.",
    "SSN: {}",
    "Social security number {}, date of birth 1984.",
    "{} is the SSN on the tax form",
    "Her social security no. ({}) was on the letter.",
    "Verify SSN {} before payroll runs",
)
IP_TEMPLATES = (
    "The request came from {}.",
    "Block {} at the firewall",
    "{} keeps retrying the login",
    "Server ({}) rebooted overnight.",
    "Failed logins from {}, {} and more",
    "Connect to {}:8443 for the admin console.",
    "ssh admin@{} -p 2222",
    "Client IP: {}",
    "The host resolved to {}; ping works.",
    "Seen from [{}]:443 in the access log",
)


def _card_forms(rnd: random.Random, number: str) -> tuple[str, str]:
    if rnd.random() < 0.4:
        return number, "compact"
    if len(number) == 15 and number[:2] in ("34", "37"):
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    sep = rnd.choice([" ", " ", "-"])
    return sep.join(groups), "grouped" if sep == " " else "dashed"


def _iban_form(rnd: random.Random, iban: str) -> tuple[str, str]:
    if rnd.random() < 0.5:
        return iban, "compact"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), "grouped"


def _ssn_form(rnd: random.Random, ssn: str) -> tuple[str, str]:
    r = rnd.random()
    if r < 0.7:
        return ssn, "dashed"
    if r < 0.85:
        return ssn.replace("-", " "), "spaced"
    return ssn.replace("-", ""), "compact"


def _ipv6(rnd: random.Random, fake: Faker) -> tuple[str, str]:
    r = rnd.random()
    if r < 0.35:
        return fake.ipv6(), "ipv6-full"
    if r < 0.75:  # zero runs compress: a network prefix, the rest mostly zeros
        groups = [rnd.randrange(0x10000) for _ in range(8)]
        start = rnd.randrange(1, 6)
        for i in range(start, min(8, start + rnd.randrange(2, 5))):
            groups[i] = 0
        if rnd.random() < 0.3:
            groups = [0xFE80, 0, 0, 0, *groups[4:]]
        return str(ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))), "ipv6-compressed"
    if r < 0.95:
        return f"::ffff:{fake.ipv4()}", "ipv6-mapped"
    return rnd.choice(["::1", "2001:db8::1", "fe80::1"]), "ipv6-short"


def _extension(rnd: random.Random, phone: str) -> tuple[str, str]:
    """Faker's en_US numbers carry their own "x123"; others get one written the usual ways now and then."""
    if "x" in phone:
        return phone, "extension"
    if rnd.random() < 0.08:
        ext = str(rnd.randrange(10, 99999))
        return phone + rnd.choice([f" ext. {ext}", f" x{ext}", f" ext {ext}"]), "extension"
    return phone, "plain"


def _entities(rnd: random.Random) -> list[tuple[str, str, str, str]]:
    """(type, value, locale, form) for every entity, in a shuffled order."""
    fakers = {}
    for locale in LOCALES:
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(SEED + LOCALES.index(locale))
    out: list[tuple[str, str, str, str]] = []
    for locale, fake in fakers.items():
        for _ in range(90):
            phone, form = _extension(rnd, fake.phone_number())
            out.append(("phone", phone, locale, form))
        for _ in range(40):
            email = rnd.choice([fake.email, fake.free_email, fake.company_email, fake.ascii_email])()
            out.append(("email", email, locale, "plain"))
        for _ in range(40):
            iban, form = _iban_form(rnd, fake.iban())
            out.append(("iban", iban, locale, form))
    brands = ("maestro", "visa13", "visa16", "visa19", "mastercard", "amex", "discover", "diners", "jcb15", "jcb16")
    fake = fakers["en_US"]
    for brand in brands:
        for _ in range(40):
            card, form = _card_forms(rnd, fake.credit_card_number(brand))
            out.append(("payment_card", card, brand, form))
    for _ in range(320):
        ssn, form = _ssn_form(rnd, fake.ssn())
        out.append(("ssn", ssn, "en_US", form))
    for _ in range(220):
        out.append(("ip_address", rnd.choice([fake.ipv4, fake.ipv4_private, fake.ipv4_public])(), "any", "ipv4"))
    for _ in range(200):
        ip, form = _ipv6(rnd, fake)
        out.append(("ip_address", ip, "any", form))
    rnd.shuffle(out)
    return out


TEMPLATES = {
    "phone": PHONE_TEMPLATES,
    "email": EMAIL_TEMPLATES,
    "iban": IBAN_TEMPLATES,
    "payment_card": CARD_TEMPLATES,
    "ssn": SSN_TEMPLATES,
    "ip_address": IP_TEMPLATES,
}


def _sentence(rnd: random.Random, kind: str, values: list[tuple[str, str, str, str]]) -> dict[str, object]:
    """A sentence of one kind's template, holding one entity (or two where the template has two holes)."""
    template = rnd.choice([t for t in TEMPLATES[kind] if t.count("{}") == len(values)])
    parts = template.split("{}")
    text, entities = parts[0], []
    for (etype, value, locale, form), tail in zip(values, parts[1:], strict=False):
        entities.append(
            {"type": etype, "start": len(text), "end": len(text) + len(value), "locale": locale, "form": form}
        )
        text += value + tail
    return {"text": text, "entities": entities, "kind": kind}


def _digits(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(string.digits) for _ in range(n))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
    return total % 10 == 0


def _not_luhn(rnd: random.Random, n: int) -> str:
    while _luhn_ok(number := rnd.choice("123456789") + _digits(rnd, n - 1)):
        pass
    return number


def _date(rnd: random.Random) -> tuple[int, int, int]:
    return rnd.randrange(1990, 2031), rnd.randrange(1, 13), rnd.randrange(1, 29)


def _isbn13(rnd: random.Random) -> str:
    body = "978" + _digits(rnd, 9)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    digits = body + str(check)
    return f"{digits[:3]}-{digits[3]}-{digits[4:6]}-{digits[6:12]}-{digits[12]}"


def _isbn10(rnd: random.Random) -> str:
    body = _digits(rnd, 9)
    check = sum((10 - i) * int(c) for i, c in enumerate(body)) % 11
    last = {0: "0", 1: "X"}.get(check, str(11 - check))
    return f"{body[0]}-{body[1:4]}-{body[4:9]}-{last}"


def _negatives(rnd: random.Random, fake: Faker) -> list[dict[str, object]]:
    def date_iso() -> str:
        y, m, d = _date(rnd)
        return f"{y}-{m:02d}-{d:02d}"

    def clock() -> str:
        return f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}"

    def price() -> str:
        whole = rnd.randrange(1000, 99_999_999)
        return rnd.choice(
            [
                f"€{whole:,}".replace(",", ".") + f",{rnd.randrange(100):02d}",
                f"${whole:,}.{rnd.randrange(100):02d}",
                f"{whole:,}".replace(",", " ") + rnd.choice([" €", " kr", " zł", " EUR", " SEK", " PLN"]),
                f"R$ {whole:,}".replace(",", ".") + f",{rnd.randrange(100):02d}",
            ]
        )

    r, d = rnd.randrange, lambda n: _digits(rnd, n)
    kinds: dict[str, tuple[Callable[[], str], ...]] = {
        "version": (
            lambda: f"Upgraded to {r(10)}.{r(20)}.{r(30)}.{r(10)}-beta",
            lambda: f"Running v{r(10)}.{r(20)}.{r(30)} since Monday.",
            lambda: f"Windows build 10.0.{r(17000, 26000)}.{r(1000, 5000)} needs a patch",
            lambda: f"Chrome {r(90, 130)}.0.{r(4000, 7000)}.{r(10, 300)} crashed.",
            lambda: f"pip installed requests=={r(3)}.{r(32)}.{r(5)} and more",
            lambda: f"release {r(1, 5)}.{r(10)}.{r(10)}.{r(100)}-rc{r(1, 4)} is out",
        ),
        "order number": (
            lambda: f"Your order {r(2019, 2026)}-{d(3)}-{d(4)} has shipped.",
            lambda: f"Order #{d(3)}-{d(7)}-{d(7)} was refunded",
            lambda: f"Invoice INV-{r(2019, 2026)}-{d(5)} is overdue.",
            lambda: f"ref. {d(4)}-{d(4)}-{d(3)}, see attachment",
            lambda: f"Ticket {d(2)}-{d(6)} was reopened by the customer.",
            lambda: f"PO-{d(4)}-{d(6)} approved",
            lambda: f"Booking confirmation {d(3)} {d(3)} {d(3)} sent.",
            lambda: f"Order number: {d(10)}",
        ),
        "tracking number": (
            lambda: (
                f"UPS tracking 1Z{rnd.choice(string.ascii_uppercase)}{d(2)}{rnd.choice(string.ascii_uppercase)}{d(12)}"
            ),
            lambda: f"USPS 9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}",
            lambda: f"FedEx 7{d(3)} {d(4)} {d(4)} is out for delivery",
            lambda: f"The parcel {d(4)} {d(4)} {d(4)} {d(2)} arrived damaged.",
            lambda: f"DHL JD{d(18)} delayed",
        ),
        "date": (
            lambda: f"Due on {date_iso()}.",
            lambda: f"Born {r(1, 29):02d}.{r(1, 13):02d}.{r(1940, 2010)} in Lyon",
            lambda: f"The lease ends {r(1, 13):02d}/{r(1, 29):02d}/{r(2020, 2031)}",
            lambda: f"From {date_iso()} to {date_iso()} inclusive.",
        ),
        "timestamp": (
            lambda: f"meeting on {date_iso()} at {clock()}:00",
            lambda: f"[{date_iso()} {clock()}:{r(60):02d},{d(3)}] ERROR worker died",
            lambda: f"created {date_iso()}T{clock()}:{r(60):02d}Z by the job",
            lambda: f"Last seen {date_iso()} {clock()}",
            lambda: f"{r(1, 29):02d}.{r(1, 13):02d}.{r(2020, 2030)} {clock()} Uhr Termin",
            lambda: (
                f"epoch {r(1_500_000_000, 1_800_000_000)} in seconds, {r(1_500_000_000_000, 1_800_000_000_000)} in ms"
            ),
        ),
        "isbn": (
            lambda: f"ISBN {_isbn13(rnd)}",
            lambda: f"The book {_isbn13(rnd)} is out of print.",
            lambda: f"ISBN-10 {_isbn10(rnd)}",
        ),
        "id failing luhn": (
            lambda: f"order {_not_luhn(rnd, 16)} shipped",
            lambda: f"Customer id {_not_luhn(rnd, r(12, 20))} merged.",
            lambda: f"card {' '.join(re.findall('....', _not_luhn(rnd, 16)))} was rejected as invalid",
            lambda: f"Reference {_not_luhn(rnd, 13)}",
        ),
        "uuid": (
            lambda: f"request {fake.uuid4()} failed",
            lambda: f"{fake.uuid4()} is the trace id.",
        ),
        "hash": (
            lambda: f"commit {fake.sha1()[: rnd.choice([7, 12, 40])]} fixed it",
            lambda: f"sha256 {fake.sha256()}",
            lambda: f"md5: {fake.md5()}",
        ),
        "code": (
            lambda: "a bare :: in the text",
            lambda: f"use std::vector<int> v({r(100)});",
            lambda: f"slice it with a[::{r(1, 9)}] and b[{r(9)}::]",
            lambda: f"ratio {r(1, 9)}:{r(1, 9)}:{r(1, 9)} and time {clock()}:{r(60):02d}",
            lambda: f"MAC {':'.join(f'{r(256):02x}' for _ in range(6))} on eth0",
            lambda: f"localhost:{r(1024, 65535)} is up",
        ),
        "price": (
            lambda: f"Total {price()} incl. VAT",
            lambda: f"The flat costs {price()}.",
        ),
        "quantity": (
            lambda: f"Population {r(1_000_000, 99_999_999):,} in {r(1990, 2024)}",
            lambda: f"Coordinates {rnd.uniform(-90, 90):.4f}, {rnd.uniform(-180, 180):.4f}",
            lambda: f"{r(100)}% of {r(10_000, 999_999)} users, {r(1, 50)}.{r(10)} s p95",
            lambda: f"Room {r(100, 999)}, floor {r(1, 20)}, {fake.postcode()} {fake.city()}",
            lambda: f"Score {r(10)}-{r(10)} after {r(90)} minutes",
            lambda: f"Years {r(1990, 2010)}-{r(2010, 2030)} and {r(1990, 2010)}\u2013{r(2010, 2030)}",
        ),
        "invalid lookalike": (
            lambda: f"SSN 000-{d(2)}-{d(4)} is not issued",
            lambda: f"ticket {d(9)}",
            lambda: f"address {r(256, 999)}.{r(256)}.{r(256)}.{r(256)} is out of range",
            lambda: f"user@localhost without a domain, {rnd.choice(['@channel', '@here', 'name@server'])}",
        ),
    }
    sentences = []
    for kind, makers in kinds.items():
        count = 90 if kind not in ("uuid", "hash", "price") else 70
        for i in range(count):
            sentences.append({"text": makers[i % len(makers)](), "entities": [], "kind": kind})
    for _ in range(80):  # ordinary messages of a support chat
        sentences.append({"text": fake.sentence(nb_words=rnd.randrange(6, 16)), "entities": [], "kind": "prose"})
    return sentences


def build() -> list[dict[str, object]]:
    rnd = random.Random(SEED)
    rows: list[dict[str, object]] = []
    pending = _entities(rnd)
    while pending:
        kind = pending[0][0]
        two = kind == "ip_address" and rnd.random() < 0.1 and len(pending) > 1 and pending[1][0] == kind
        values = [pending.pop(0)] if not two else [pending.pop(0), pending.pop(0)]
        rows.append(_sentence(rnd, kind, values))
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    rows.extend(_negatives(rnd, fake))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    entities = sum(len(r["entities"]) for r in rows)  # type: ignore[arg-type]
    negatives = sum(not r["entities"] for r in rows)
    print(f"{args.out}: {len(rows)} sentences, {entities} entities, {negatives} negatives")


if __name__ == "__main__":
    main()
