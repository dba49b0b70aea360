"""SECRET: a value assigned to a setting whose name says it is secret, in the forms configuration takes.

Passwords and hand-made tokens have no vendor format and are often too short or too plain for the
high-entropy key pattern, so what gives them away is where they sit: after `export DB_PASSWORD=`, in
a `.env` line, under `password:` in YAML, as `"api_token": "..."` in JSON, `secret = ...` in INI or
TOML, `ENV NAME value` in a Dockerfile, `--password=...` on a command line, or as the `value:` under
`- name: API_TOKEN` (Kubernetes and CI environment lists). Names match in upper or lower case and
values quoted or bare; the name must carry a secret word (password, secret, token, api key, ...)
and not end in a word that makes it a reference to one (`password_file`, `token_url`, `secret_name`).

The value must look like a literal secret rather than code or a placeholder: at least 6 characters,
a letter and a digit or symbol, none of `()[]{}<>`, not a variable reference (`$VAR`, `${VAR}`,
`%VAR%`), a path, a URL, a dotted or upper-case identifier, or a run of one character (`********`).
"""

from __future__ import annotations

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from gemmaflow.pipeline.pii import entities as E

# A secret word somewhere in the setting's name (camelCase, snake_case, kebab-case or dotted).
SECRET_WORD = (
    r"(?:passw(?:or)?d|passphrase|pwd|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|auth[_.-]?key"
    r"|credentials?|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key|session[_.-]?key)"
)
# Names ending in one of these point at a secret or describe it; the value is not the secret itself.
_NOT_A_SECRET_SUFFIX = regex.compile(
    r"(?i)[_.-](?:file|path|dir|url|uri|endpoint|env|name|type|id|length|len|size|count|min|max|prompt|field"
    r"|header|regex|pattern|label|policy|expiry|expires|ttl|timeout|ref|source|hint|format|mode|enabled)$"
)
_NAME = rf"(?:[A-Za-z_][\w.-]*?)?{SECRET_WORD}[\w.-]*"
_DOUBLE, _SINGLE, _BARE = r'"(?P<v>[^"\\\n]{6,200})"', r"'(?P<v>[^'\\\n]{6,200})'", r"(?P<v>[^\s'\"]{5,199}[^\s'\",;])"
_VALUE = rf"(?:{_DOUBLE}|{_SINGLE}|{_BARE})"

_ASSIGNED = regex.compile(
    rf"""(?ix)
    (?:
        # shell, .env, INI, TOML, YAML and code: NAME=..., export NAME=..., name: ..., "name": ...
        (?<![\w.-])(?P<q>["']?)(?P<n>{_NAME})(?P=q)[ \t]*(?::|=|:=)[ \t]*
      | # Dockerfile's older form: ENV NAME value
        ^[ \t]*ENV[ \t]+(?P<n>{_NAME})[ \t]+
      | # command-line flags: --password=..., --api-token ...
        (?<![\w-])--(?P<n>{_NAME})(?:=|[ \t]+)
      | # environment lists: `- name: API_TOKEN` with `value: ...` on the next line
        \bname:[ \t]*(?P<q2>["']?)(?P<n>{_NAME})(?P=q2)[ \t]*\r?\n[ \t]*(?:-[ \t]*)?value:[ \t]*
    )
    {_VALUE}
    """,
    regex.MULTILINE,
)

_REFERENCE = regex.compile(
    r"""(?x)
    ^[$%&*!@]             # $VAR, ${VAR}, %VAR%, YAML anchors/aliases/tags, @decorators
  | [()\[\]{}<>]          # code expressions, templates, <placeholders>
  | ://                   # URLs
  | ^(?:~|\.{1,2})?/      # paths
  | ^(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*$   # dotted names: settings.SECRET_KEY, os.environ
  | ^[A-Z][A-Z0-9_]*_[A-Z0-9_]*$        # UPPER_CASE constants
  | ^(.)\1*$              # one character repeated: ********, xxxxxxxx
    """
)


def literal_secret(value: str) -> bool:
    """Whether `value` reads as a written-out secret, not a reference, an expression or a word."""
    if _REFERENCE.search(value):
        return False
    has_letter = any(c.isalpha() for c in value)
    has_digit_or_symbol = any(c.isdigit() or not (c.isalnum() or c in "_.-") for c in value)
    return has_letter and has_digit_or_symbol


class AssignedSecretRecognizer(EntityRecognizer):
    """SECRET spans: the value part of a secret-named setting (see the module docstring)."""

    SCORE = 0.8

    def __init__(self) -> None:
        super().__init__(supported_entities=[E.SECRET], name="AssignedSecretRecognizer")

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in _ASSIGNED.finditer(text):
            if _NOT_A_SECRET_SUFFIX.search(match.group("n")) or not literal_secret(match.group("v")):
                continue
            results.append(RecognizerResult(E.SECRET, match.start("v"), match.end("v"), self.SCORE))
        return results
