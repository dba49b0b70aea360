"""The presidio recognisers the PII stage runs: presidio's own, tightened, plus gemmaflow's secrets.

Every recogniser here is a presidio `EntityRecognizer`, so any presidio recogniser (a
`PatternRecognizer` with your own regex, a deny list, a country-specific one) can be added to the
list `build_recognisers` returns; see the README's PII section.

Where presidio's defaults were changed, the reason is a measured false positive on the dev corpus:
- US_SSN: only the delimited `ddd-dd-dddd` form; presidio's "very weak" patterns match any 9-digit
  number (sizes, timestamps in code).
- IP_ADDRESS: a dotted quad right after "version", "release", "build", "requires ..." is a version
  number, not an address.
- PHONE_NUMBER: python-phonenumbers runs on short candidate windows only (a regex finds runs of
  digits first), and a match that is part of a formula (`= `), an ISBN or a date is dropped.
- EMAIL_ADDRESS: presidio validates the domain with tldextract, which downloads the public suffix
  list at first use; ours uses tldextract's bundled snapshot and never touches the network.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from collections.abc import Iterable

import phonenumbers
import regex
import tldextract
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)

from gemmaflow.pipeline.pii import entities as E
from gemmaflow.pipeline.pii.assigned_secrets import AssignedSecretRecognizer

# Regions whose national formats (no leading +) are tried; numbers with a + parse in any region.
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "JP", "CN", "IN", "BR", "AU")


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's email regex; the domain is checked against tldextract's bundled suffix snapshot, and
    unknown suffixes are accepted when they look like a domain label."""

    def __init__(self) -> None:
        super().__init__()
        # suffix_list_urls=() and cache_dir=None: no download, no cache file, the snapshot shipped
        # inside the tldextract package.
        self.extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        if self.extractor(pattern_text).fqdn:
            return True
        # Made-up and internal domains (user@host.dom, joe@fred.mik) are still someone's address;
        # a one-character local part and a non-alphabetic last label (a@b.T, x@y.2) are not.
        local, _, domain = pattern_text.rpartition("@")
        return len(local) >= 2 and regex.fullmatch(r"[A-Za-z]{2,10}", domain.rsplit(".", 1)[-1]) is not None


def is_public_ip(value: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and documentation addresses (no one's)."""
    try:
        address = ipaddress.ip_address(value.split("/")[0].split("%")[0].strip("[]"))
    except ValueError:
        return True  # not parsable as an address: leave the decision to the recogniser
    return address.is_global and not address.is_multicast


# An address whose domain is an IP literal (RFC 5321 section 4.1.3): one email, not a name and an IP.
IP_LITERAL_EMAIL = Pattern(
    "email with IP literal",
    r"\b[A-Za-z0-9._%+-]+@(?:\[(?:IPv6:)?[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}(?![\d.]))",
    0.6,
)


_VERSION_CUE = regex.compile(r"(?i)\b(?:versions?|release|build|requires?\s+\S+|v|ver\.?)\s*[:=]?\s*$")
_HEX_GROUP = regex.compile(r"[0-9A-Fa-f]+")


class VersionAwareIpRecognizer(IpRecognizer):
    """presidio's IPv4/IPv6 patterns, minus version numbers and code that only looks like IPv6.

    Dropped: a dotted quad a version word introduces or that is part of a longer dotted number
    (`5.2.4.2.1`); presidio's bare `::` pattern (C++ scopes, Python slices); compressed IPv6 forms
    with one group (`::Add` in `Registry<T>::Add`) or two groups of one or two digits (`1::2` is far
    more often a slice than an address).
    """

    def __init__(self, keep_private: bool = False) -> None:
        super().__init__(patterns=[p for p in IpRecognizer.PATTERNS if p.name != "IPv6_unspecified"])
        self.keep_private = keep_private

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if not self._is_decoy(text, r.start, r.end)
                and not (self.keep_private and not is_public_ip(text[r.start : r.end]))]  # fmt: skip

    @staticmethod
    def _is_decoy(text: str, start: int, end: int) -> bool:
        value = text[start:end]
        if ":" in value:
            groups = _HEX_GROUP.findall(value.split("/")[0].split("%")[0])
            short = len(groups) < 2 or (len(groups) < 3 and all(len(g) <= 2 for g in groups))
            return short and "." not in value and "/" not in value  # a /prefix makes `1::2/120` an address
        if regex.match(r"\.\d", text[end : end + 2]) or regex.search(r"\d\.$", text[max(0, start - 2) : start]):
            return True
        return bool(_VERSION_CUE.search(text[max(0, start - 40) : start]))


# presidio's card pattern plus Mastercard's 2221-2720 range (issued since 2017), which it lacks.
_CARD_PATTERN = Pattern(
    "credit card",
    r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(2[2-7]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))"
    r"[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
    0.3,
)


class StrictSsnRecognizer(UsSsnRecognizer):
    """US SSNs only in the dashed `ddd-dd-dddd` form (presidio's invalidation rules still apply)."""

    def __init__(self) -> None:
        super().__init__(patterns=[Pattern("SSN dashed", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", 0.5)])


# Candidate phone numbers: an optional +, then digits with the separators phone formats use.
_PHONE_CANDIDATE = regex.compile(r"(?<![\w.+/-])\+?\(?\d[\d ().\-/]{5,22}\d(?![\w/]|\.\d|-\d)")
# An operator on the same line right before or after the number: part of a formula.
_FORMULA_AFTER = regex.compile(r"^[ \t]*[=<>*/^]|^[ \t]*[+-][ \t]*\d")
_FORMULA_BEFORE = regex.compile(r"[=<>*/^][ \t]*$")
_ISBN_CUE = regex.compile(r"(?i)isbn[\s:-]*$")
_PHONE_CUE = regex.compile(
    r"(?i)(?:phone|tel|fax|mobile|cell|call|ring|telefon\w*|t[ée]l[ée]phone|电话|電話|手机|携帯)\W{0,4}$"
)
# Shapes that are something else: dates, decimals, ZIP+4 codes, 4x4-digit groups (cards and their
# decoys), and dotted numbers other than the 3.3.4 and 2.2.2.2.2 phone styles (versions, OIDs).
_NOT_A_PHONE = regex.compile(
    r"^(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d+\.\d+|\d{5}-\d{4}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}"
    r"|(?!\d{3}\.\d{3}\.\d{4}$|\d{2}(?:\.\d{2}){4}$)\d+(?:\.\d+)+)$"
)


def _is_isbn(window: str) -> bool:
    """ISBN-13 (978/979 prefix) or hyphenated ISBN-10 (four groups, one check digit), checksum valid."""
    digits = "".join(c for c in window if c.isdigit())
    if len(digits) == 13 and digits[:3] in ("978", "979"):
        return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    groups = window.split("-")
    if len(digits) == 10 and len(groups) == 4 and len(groups[-1]) == 1:
        return sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11 == 0
    return False


class WindowedPhoneRecognizer(EntityRecognizer):
    """python-phonenumbers (as presidio's PhoneRecognizer uses it) on candidate windows only.

    presidio's recogniser scans the whole document once per region; here a regex finds the few
    digit runs that could be numbers and only those are parsed, so a long document without digits
    costs one regex pass. Leniency is "possible number" (length per region), because real-world
    text is full of numbers whose area code a validity check rejects; precision comes instead from
    the shape: a candidate needs a leading +, or at least 10 digits and phone-style grouping
    (spaces, dashes, dots or parentheses) or a cue word before it ("Tel.", "phone", "电话"). Windows in
    a formula, after "ISBN", ISBNs by checksum, dates, decimals and ZIP+4 codes are dropped.
    """

    SCORE = 0.7

    def __init__(self, regions: Iterable[str]) -> None:
        self.regions = tuple(regions)
        super().__init__(supported_entities=[E.PHONE_NUMBER], name="WindowedPhoneRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: dict[tuple[int, int], RecognizerResult] = {}
        for candidate in _PHONE_CANDIDATE.finditer(text):
            start, end = candidate.span()
            window = candidate.group()
            if self._is_decoy(text, start, end, window):
                continue
            for region in self.regions:  # the first region that finds a number in the window wins
                matches = list(phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.POSSIBLE))
                for match in matches:
                    span = (start + match.start, start + match.end)
                    results.setdefault(span, RecognizerResult(E.PHONE_NUMBER, span[0], span[1], self.SCORE))
                if matches:
                    break
        return list(results.values())

    @staticmethod
    def _is_decoy(text: str, start: int, end: int, window: str) -> bool:
        before, after = text[max(0, start - 16) : start], text[end : end + 6]
        if _FORMULA_AFTER.search(after) or _FORMULA_BEFORE.search(before) or _ISBN_CUE.search(before):
            return True
        if _NOT_A_PHONE.match(window.lstrip("(")) or _is_isbn(window):
            return True
        if window.startswith("+"):
            return False
        # A national number has at least 10 digits (year ranges, page ranges and counts have fewer)
        # and is grouped like a phone number unless a cue word introduces it.
        digits = sum(c.isdigit() for c in window)
        grouped = regex.search(r"\d[ ().-]+\d", window) is not None
        return digits < 10 or not (grouped or _PHONE_CUE.search(before))


def shannon_entropy(token: str) -> float:
    """Bits per character of `token`'s own character distribution."""
    counts = Counter(token)
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# A secret-ish name right before the value on the same line: `api_key = "`, `token: `, `SECRET=`
# (one more word may sit between name and sign: `aws_secret_access_key prod = `).
_SECRET_CUE = regex.compile(
    r"(?i)(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|credential|auth|access[_-]?key|client[_-]?id)"
    r"[\w.-]*(?:\s+\w+)?[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"'(]?\s*$"
)


class HighEntropyRecognizer(PatternRecognizer):
    """A token that is introduced by a secret-ish name and looks random (mixed classes, high entropy).

    Identifiers in code are long mixed-case tokens too (`createEHFrameSplitterPass_MachO_x86_64`),
    so a bare token is never enough; hashes and UUIDs (hex only, no upper case) never pass the
    character-class test. `prefixed` patterns (vendor key formats) need no cue.
    """

    def __init__(self, entity: str, pattern: str, min_entropy: float, prefixed: str = "") -> None:
        patterns = [Pattern(entity.lower(), pattern, 0.6)]
        if prefixed:
            patterns.append(Pattern(f"{entity.lower()} prefixed", prefixed, 0.9))
        super().__init__(
            supported_entity=entity,
            name=f"{entity.title().replace('_', '')}Recognizer",
            patterns=patterns,
            global_regex_flags=regex.MULTILINE,
        )
        self.prefixed = regex.compile(prefixed) if prefixed else None
        self.min_entropy = min_entropy

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None, regex_flags: int | None = None
    ) -> list[RecognizerResult]:
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if self._introduced(text, r.start, r.end)]

    def _introduced(self, text: str, start: int, end: int) -> bool:
        if self.prefixed is not None and self.prefixed.fullmatch(text[start:end]):
            return True
        line_start = max(text.rfind("\n", 0, start) + 1, start - 80)
        return _SECRET_CUE.search(text[line_start:start]) is not None

    def validate_result(self, pattern_text: str) -> bool | None:
        if self.prefixed is not None and self.prefixed.fullmatch(pattern_text):
            return True
        classes = sum(
            (any(c.islower() for c in pattern_text), any(c.isupper() for c in pattern_text),
             any(c.isdigit() for c in pattern_text))
        )  # fmt: skip
        return classes == 3 and shannon_entropy(pattern_text) >= self.min_entropy


def secret_recognisers() -> list[EntityRecognizer]:
    """AWS keys, GitHub tokens, private-key blocks, generic high-entropy API keys and assigned secrets."""
    return [
        PatternRecognizer(
            supported_entity=E.AWS_ACCESS_KEY,
            name="AwsAccessKeyRecognizer",
            # AKIA (long-term) and ASIA (temporary) key ids: 4 letters + 16 upper-case base32 characters.
            # The prefix is distinctive enough to match even when a word is glued on (`keyAKIA...`).
            patterns=[Pattern(
                "aws access key id", r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z2-7]{16}(?![A-Z2-7])", 0.9
            )],
            global_regex_flags=regex.MULTILINE,
        ),
        # 40 base64 characters, not part of a longer token, after `aws_secret_access_key =` or the like
        # (`=` may sit right before it, as in `export AWS_SECRET_ACCESS_KEY=...`; base64 pads only at the end).
        HighEntropyRecognizer(E.AWS_SECRET_KEY, r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", 4.0),
        PatternRecognizer(
            supported_entity=E.GITHUB_TOKEN,
            name="GithubTokenRecognizer",
            patterns=[
                Pattern("github token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", 0.95),
                Pattern("github fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", 0.95),
            ],
            global_regex_flags=regex.MULTILINE,
        ),
        PatternRecognizer(
            supported_entity=E.PRIVATE_KEY,
            name="PrivateKeyRecognizer",
            patterns=[
                Pattern(
                    "pem private key",
                    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
                    r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
                    1.0,
                )
            ],
            global_regex_flags=regex.DOTALL,
        ),
        HighEntropyRecognizer(
            E.API_KEY,
            r"(?<![\w/+=.-])[A-Za-z0-9_\-/+=]{20,256}(?![\w/+=.-])",
            4.0,
            # Vendor formats: Stripe, Slack, Google API keys, OpenAI-style sk- keys.
            prefixed=r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[A-Za-z0-9_-]{35}"
            r"|sk-[A-Za-z0-9_-]{32,}",
        ),
        AssignedSecretRecognizer(),
    ]


# A personal name: two or three capitalised words (an initial or a particle may sit between), or a
# CJK name of two to five characters (family name, optional space, given name).
_NAME_WORD = r"\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}?[\p{Ll}'’]+)?"
_LATIN_NAME = (
    rf"{_NAME_WORD}(?:[ ](?:\p{{Lu}}\.|van|von|de|del|da|di|du|der|den|la|le|bin|al)){{0,2}}(?:[ ]{_NAME_WORD}){{1,2}}"
)
_CJK_NAME = r"\p{Han}{1,2}[ ]?\p{Han}{1,3}(?!\p{Han})"
# Labels that say "a person's name follows": bylines, contact lines, trailers (Signed-off-by:).
_NAME_CUE = (
    r"(?i:\bauthors?|\bmaintainers?|\bcontact|\bwritten[ ]by|\b[a-z]+-by|\bthanks[ ]to|\bcorrespondence[ ]to"
    r"|\battn\.?|\bkontakt|\bcontacto|\bcontatto|\bansprechpartner(?:in)?)[ ]*[:：]?[ ]*|\\author\{|\bask[ ]"
)
_CJK_CUE = r"(?:联系人|负责人|担当|お問い合わせ|連絡先|担当者)[ ]*[:：][ ]*"
_LABELLED_NAME = regex.compile(
    rf"(?:{_NAME_CUE})(?P<name>{_LATIN_NAME})\b"
    rf"|(?P<name>{_LATIN_NAME})(?=[ ]*[<(（][ ]*[\w.+-]+@)"
    rf"|{_CJK_CUE}(?P<name>{_CJK_NAME})"
)


class LabelledNameRecognizer(EntityRecognizer):
    """PERSON where the text itself says a name is there: after a byline or contact label
    ("Author:", "Contact", "Signed-off-by:", "\\author{", "联系人："), or right before an email
    address in brackets ("Jane Roe <jane@...>").

    A pattern, not NER, so it also runs on code, where bylines and contact comments are the
    usual place a person's name appears; a name-shaped identifier has no such label.
    """

    SCORE = 0.7

    def __init__(self) -> None:
        super().__init__(supported_entities=[E.PERSON], name="LabelledNameRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult(E.PERSON, m.start("name"), m.end("name"), self.SCORE)
            for m in _LABELLED_NAME.finditer(text)
        ]


def structured_recognisers(phone_regions: Iterable[str], keep_private_ips: bool = False) -> list[EntityRecognizer]:
    """presidio's pattern recognisers, with the changes the module docstring lists."""
    return [
        OfflineEmailRecognizer(),
        PatternRecognizer(supported_entity=E.EMAIL_ADDRESS, name="IpLiteralEmail", patterns=[IP_LITERAL_EMAIL]),
        WindowedPhoneRecognizer(phone_regions),
        CreditCardRecognizer(patterns=[_CARD_PATTERN]),  # Luhn checksum validated
        StrictSsnRecognizer(),
        VersionAwareIpRecognizer(keep_private=keep_private_ips),
        IbanRecognizer(),  # country format and mod-97 checksum validated
        UrlRecognizer(),
        street_address_recogniser(),
        LabelledNameRecognizer(),
    ]


def street_address_recogniser() -> PatternRecognizer:
    """US street and military addresses, anchored on a two-letter state and a ZIP code.

    The anchor keeps it precise: a house number and capitalised words alone are too common in prose.
    """
    words = r"\p{Lu}[\p{L}'.-]*(?:[ ]\p{Lu}[\p{L}'.-]*){0,3}"
    unit = r"(?:[ ,]+(?:Apt\.|Suite|Unit|Ste\.?)[ ]\w+)?"
    sep = r"(?:,[ ]*|[ ]*\\\\[ ]*|[ ]*\n[ ]*)"
    street = rf"\b\d{{1,6}}[ ]{words}{unit}{sep}{words}{sep}\p{{Lu}}{{2}}[ ]\d{{5}}(?:-\d{{4}})?\b"
    military = r"\b(?:Unit|PSC|USNS|USNV|USS|USCGC)[ ][\w ,]{1,30}?,[ ]*(?:APO|FPO|DPO)[ ](?:AA|AE|AP)[ ]\d{5}\b"
    return PatternRecognizer(
        supported_entity=E.STREET_ADDRESS,
        name="StreetAddressRecognizer",
        patterns=[Pattern("us street address", street, 0.6), Pattern("us military address", military, 0.6)],
        global_regex_flags=regex.MULTILINE,
    )


def build_recognisers(
    entities: Iterable[str], phone_regions: Iterable[str], keep_private_ips: bool = False
) -> list[EntityRecognizer]:
    """The pattern recognisers for `entities` (PERSON here means labelled names; NER adds the rest)."""
    wanted = set(entities)
    return [
        r
        for r in structured_recognisers(phone_regions, keep_private_ips) + secret_recognisers()
        if wanted.intersection(r.supported_entities)
    ]
