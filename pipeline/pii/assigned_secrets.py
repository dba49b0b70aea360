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

# The secret words a setting's name may hold, case-insensitive (the pre-screen's trigger too).
SECRET_WORD = (
    r"(?i:passw(?:or)?d|passphrase|pwd|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|auth[_.-]?key"
    r"|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key|session[_.-]?key)"
)
_SECRET_WORD = regex.compile(SECRET_WORD)
# The word must be a whole part of the name: snake_case, kebab-case, dotted, camelCase (`apiToken`) or
# glued in capitals (`PGPASSWORD`), so `tokenize`, `textoken` and `détokenise` are no secret names.
_WORD_START = r"(?:(?<![\p{L}\p{N}])|(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}))"
_WORD_END = r"(?:(?![\p{L}])|(?<=\p{Ll})(?=\p{Lu}))"
_NAME = rf"(?:[A-Za-z_][\w.-]*?)?{_WORD_START}{SECRET_WORD}{_WORD_END}[\w.-]*"
# Names ending in one of these point at a secret or describe it; the value is not the secret itself.
_NOT_A_SECRET_SUFFIX = regex.compile(
    r"(?i)[_.-](?:file|path|dir|url|uri|endpoint|env|name|type|id|length|len|size|count|min|max|prompt|field"
    r"|header|regex|pattern|label|policy|expiry|expires|ttl|timeout|ref|source|hint|format|mode|enabled|maps?)$"
)
_QUOTED = r"""(?:"(?P<v>[^"\\\n]{6,200})"|'(?P<v>[^'\\\n]{6,200})')"""
_BARE = r"""(?P<v>[^\s'"]{5,199}[^\s'",;])"""
_LINE_END = r"(?=[ \t]*(?:[#;].*)?$)"  # nothing but a comment after the value
_NAME_START = r"(?<![\p{L}\p{N}_.\\-])"  # not inside a longer name, not a LaTeX macro

_ASSIGNED = regex.compile(
    rf"""(?x)
    (?:
        # JSON, YAML and dict keys in quotes: "api_key": "...", 'password' => '...'
        (?P<q>["'])(?P<n>{_NAME})(?P=q)[ \t]*(?::|=>|=)[ \t]*(?:{_QUOTED}|{_BARE})
      | # shell and .env, no spaces: NAME=..., export NAME=..., set NAME=..., NAME=... command
        {_NAME_START}(?P<n>{_NAME})=(?:{_QUOTED}|{_BARE})
      | # INI, TOML, YAML and code, with spaces: name = ..., name: ... (a bare value must end the line)
        {_NAME_START}(?P<n>{_NAME})[ \t]*(?:=|:=|:)[ \t]+(?:{_QUOTED}|{_BARE}{_LINE_END})
      | # Dockerfile's older form: ENV NAME value
        ^[ \t]*ENV[ \t]+(?P<n>{_NAME})[ \t]+(?:{_QUOTED}|{_BARE})
      | # command-line flags: --password=..., --api-token ...
        (?<![\w-])--(?P<n>{_NAME})(?:=|[ \t]+)(?:{_QUOTED}|{_BARE})
      | # environment lists: `- name: API_TOKEN` with `value: ...` on the next line
        \bname:[ \t]*(?P<q2>["']?)(?P<n>{_NAME})(?P=q2)[ \t]*\r?\n[ \t]*(?:-[ \t]*)?value:[ \t]*(?:{_QUOTED}|{_BARE})
    )
    """,
    regex.MULTILINE,
)

_REFERENCE = regex.compile(
    r"""(?x)
    ^[$%&*!@]             # $VAR, ${VAR}, %VAR%, YAML anchors/aliases/tags, @decorators
  | [()\[\]{}<>]          # code expressions, templates, <placeholders>
  | ://|^\w+:/            # URLs, hash:/etc/postfix/...
  | ^(?:~|\.{1,2})?/      # paths
  | ^(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*$   # dotted names: settings.SECRET_KEY, os.environ
  | ^[A-Z][A-Z0-9_]*_[A-Z0-9_]*$        # UPPER_CASE constants
  | ^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$     # snake_case names: next_token2
  | ^(.)\1*$              # one character repeated: ********, xxxxxxxx
  | ^[-+]?(?:0[xX][0-9a-fA-F]+|\d[\d_.,]*)[a-zA-Z]{0,3}$   # numbers: 0x10100, 1_000_000, 30s
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
        for start, end in secret_word_lines(text):
            for match in _ASSIGNED.finditer(text, start, end):
                if _NOT_A_SECRET_SUFFIX.search(match.group("n")) or not literal_secret(match.group("v")):
                    continue
                results.append(RecognizerResult(E.SECRET, match.start("v"), match.end("v"), self.SCORE))
        return results


def secret_word_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the lines holding a secret word, each with the line after it (where an
    environment list puts the `value:`), overlapping spans merged. The full pattern is tried on
    these alone: scanning every position of a long document with it costs ten times more."""
    spans: list[tuple[int, int]] = []
    for hit in _SECRET_WORD.finditer(text):
        if spans and hit.start() < spans[-1][1]:
            continue
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.end())
        end = len(text) if end < 0 else text.find("\n", end + 1)
        end = len(text) if end < 0 else end
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans
