"""The entity types the PII stage knows, their placeholders, and which ones each domain gets.

Names follow presidio's where presidio has the entity (EMAIL_ADDRESS, US_SSN, ...); the secrets and
the street address are gemmaflow's own recognisers (pipeline/pii/recognisers.py). This module imports
nothing heavy so the config can validate entity names without loading presidio.
"""

from __future__ import annotations

EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"
IP_ADDRESS = "IP_ADDRESS"
IBAN_CODE = "IBAN_CODE"
URL = "URL"
AWS_ACCESS_KEY = "AWS_ACCESS_KEY"
AWS_SECRET_KEY = "AWS_SECRET_KEY"
GITHUB_TOKEN = "GITHUB_TOKEN"
API_KEY = "API_KEY"
SECRET = "SECRET"  # a password or token assigned to a secret-named setting (assigned_secrets.py)
PRIVATE_KEY = "PRIVATE_KEY"
STREET_ADDRESS = "STREET_ADDRESS"
PERSON = "PERSON"
LOCATION = "LOCATION"

# Found by patterns (presidio's or ours); cheap, run on every domain.
STRUCTURED = (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN, IP_ADDRESS, IBAN_CODE, URL, STREET_ADDRESS)
SECRETS = (AWS_ACCESS_KEY, AWS_SECRET_KEY, GITHUB_TOKEN, API_KEY, SECRET, PRIVATE_KEY)
# Found by the spaCy NER model through presidio's NLP engine; prose only.
NER = (PERSON, LOCATION)
ALL_ENTITIES = STRUCTURED + SECRETS + NER

# Default set: URLs are addresses of documents, not of people, and LOCATION (a city, a country) is
# mostly not personal, so both are opt-in.
DEFAULT_ENTITIES = tuple(e for e in ALL_ENTITIES if e not in (URL, LOCATION))

# Typed placeholders: what replaces a span under the `placeholder` policy (`<EMAIL>`).
PLACEHOLDER_LABELS = {
    EMAIL_ADDRESS: "EMAIL",
    PHONE_NUMBER: "PHONE",
    CREDIT_CARD: "CREDIT_CARD",
    US_SSN: "SSN",
    IP_ADDRESS: "IP_ADDRESS",
    IBAN_CODE: "IBAN",
    URL: "URL",
    AWS_ACCESS_KEY: "AWS_ACCESS_KEY",
    AWS_SECRET_KEY: "AWS_SECRET_KEY",
    GITHUB_TOKEN: "GITHUB_TOKEN",
    API_KEY: "API_KEY",
    SECRET: "SECRET",
    PRIVATE_KEY: "PRIVATE_KEY",
    STREET_ADDRESS: "ADDRESS",
    PERSON: "PERSON",
    LOCATION: "LOCATION",
}

# When two detections overlap, the one with the higher priority wins (then the longer, then the
# earlier): a validated structured match beats a statistical NER guess, and a secret beats the
# generic key pattern that also matched it.
PRIORITY = {
    PRIVATE_KEY: 100,
    AWS_ACCESS_KEY: 95,
    GITHUB_TOKEN: 95,
    AWS_SECRET_KEY: 90,
    EMAIL_ADDRESS: 85,
    CREDIT_CARD: 80,
    IBAN_CODE: 80,
    US_SSN: 75,
    IP_ADDRESS: 70,
    PHONE_NUMBER: 65,
    API_KEY: 60,
    SECRET: 55,
    URL: 50,
    STREET_ADDRESS: 40,
    PERSON: 30,
    LOCATION: 20,
}

POLICIES = ("placeholder", "pseudonym")


def unknown_entities(names: tuple[str, ...] | list[str]) -> list[str]:
    """The names in `names` that are no entity type this stage knows (sorted)."""
    return sorted(set(names) - set(ALL_ENTITIES))
