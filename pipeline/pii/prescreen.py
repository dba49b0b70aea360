"""The cheap pre-screen: which entity types could possibly be in a text, decided by one regex each.

Most documents hold no PII of most types; asking presidio only for the types whose trigger occurs
(an `@` for email, a run of digits for phone or card numbers, ...) skips whole recognisers, and a
document with no trigger at all skips presidio entirely. A trigger is deliberately looser than the
recogniser behind it: a miss here is a miss in the output.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.assigned_secrets import SECRET_WORD

_DIGIT_RUN = r"\d(?:[ \-./()]{0,2}\d){6,}"  # seven or more digits with light separators
_TOKEN_32 = r"[A-Za-z0-9_/+-]{32}"

TRIGGERS: dict[str, regex.Pattern[str]] = {
    E.EMAIL_ADDRESS: regex.compile(r"\w@[\w\[]"),  # `[`: an IP-literal domain, user@[192.0.2.1]
    E.PHONE_NUMBER: regex.compile(_DIGIT_RUN),
    E.CREDIT_CARD: regex.compile(_DIGIT_RUN),
    E.US_SSN: regex.compile(r"\d{3}-\d{2}-\d{4}"),
    E.IP_ADDRESS: regex.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:|::"),
    E.IBAN_CODE: regex.compile(r"\b[A-Z]{2}\d{2}[ ]?[A-Z0-9]{4}"),
    E.URL: regex.compile(r"\w\.\w"),
    E.STREET_ADDRESS: regex.compile(r"\b[A-Z]{2} \d{5}\b"),
    E.AWS_ACCESS_KEY: regex.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|NPA)[A-Z2-7]{16}"),
    E.AWS_SECRET_KEY: regex.compile(_TOKEN_32),
    E.GITHUB_TOKEN: regex.compile(r"gh[pousr]_|github_pat_"),
    E.API_KEY: regex.compile(_TOKEN_32),
    E.SECRET: regex.compile(rf"(?i){SECRET_WORD}"),
    E.PRIVATE_KEY: regex.compile(r"PRIVATE KEY-----"),
    # Labelled names (recognisers.LabelledNameRecognizer): a label word or an email to sit before.
    E.PERSON: regex.compile(r"(?i)@|author|maintainer|contact|written by|-by|thanks to|correspondence|attn|ask "
                            r"|kontakt|contatto|ansprechpartner|联系人|负责人|担当|お問い合わせ|連絡先"),
}


def triggered(text: str, entities: Iterable[str]) -> list[str]:
    """The entity types among `entities` whose trigger occurs in `text`, in the order given.

    Entities without a trigger (LOCATION) are left out: NER has its own screen (pipeline/pii/ner.py).
    """
    hits: dict[str, bool] = {}
    found = []
    for entity in entities:
        trigger = TRIGGERS.get(entity)
        if trigger is None:
            continue
        if trigger.pattern not in hits:
            hits[trigger.pattern] = trigger.search(text) is not None
        if hits[trigger.pattern]:
            found.append(entity)
    return found
