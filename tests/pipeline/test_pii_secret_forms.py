"""Secrets in every form configuration takes: shell, .env, YAML, JSON, INI, TOML, flags, env lists.

Each form is written with upper- and lower-case names and quoted and bare values; each must lose
its value, and the same lines holding references, placeholders or code instead of a secret must
come out unchanged.
"""

from __future__ import annotations

import pytest

from gemmaflow.pipeline.config import PiiConfig
from gemmaflow.pipeline.pii.assigned_secrets import literal_secret
from gemmaflow.pipeline.pii.scrubber import PiiScrubber

AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 base64 characters, the AWS secret key shape
PASSWORD = "Zx9#kQ2!vLp8"
TOKEN = "tk_4f9Qa2LmZ8"
SHORT = "hunter22"
SECRETS = (AWS, PASSWORD, TOKEN, SHORT)

# form -> text whose every secret above must be gone
FORMS = {
    "shell export": f"export AWS_SECRET_ACCESS_KEY={AWS}\nexport db_password='{PASSWORD}'\n"
    f'export API_TOKEN="{TOKEN}"\n',
    "shell inline": f"AWS_SECRET_ACCESS_KEY={AWS} aws s3 ls\nPGPASSWORD={SHORT} psql -h db\nset API_KEY={TOKEN}\n",
    ".env": f"DATABASE_PASSWORD={PASSWORD}\nstripe_api_key={TOKEN}\nSESSION_SECRET='{SHORT}'\n",
    "YAML": f"aws:\n  secret_access_key: {AWS}\n  password: \"{PASSWORD}\"\nApiToken: '{TOKEN}'\n",
    "JSON": f'{{"api_key": "{TOKEN}", "password": "{PASSWORD}", "clientSecret": "{SHORT}"}}\n',
    "INI": f"[default]\naws_secret_access_key = {AWS}\npassword={PASSWORD}\nAuthToken : {TOKEN}\n",
    "TOML": f'[db]\npassword = "{PASSWORD}"\napi_token = \'{TOKEN}\'\nSECRET_KEY = "{SHORT}"\n',
    "Dockerfile": f"ENV SECRET_KEY={TOKEN}\nENV DB_PASSWORD {PASSWORD}\n",
    "command-line flag": f"mysql -u root --password={PASSWORD}\nmytool --api-token {TOKEN}\n",
    "environment list": f"env:\n  - name: API_TOKEN\n    value: {TOKEN}\n  - name: db-password\n"
    f'    value: "{PASSWORD}"\n',
}

# Lines of the same shapes whose value is no secret: references, placeholders, code, descriptions.
NOT_SECRETS = (
    "export AWS_SECRET_ACCESS_KEY=$AWS_SECRET\n"
    "export API_TOKEN=${API_TOKEN:-}\n"
    "set DB_PASSWORD=%DB_PASSWORD%\n"
    "password: <your-password>\n"
    "password: '********'\n"
    "password_file: /run/secrets/db_password\n"
    'token_url: "https://auth.example.com/oauth2/token"\n'
    '"secret_name": "prod-db-credentials-v2"\n'
    "token = tokenizer.next_token(stream)\n"
    "password = settings.DATABASE_PASSWORD\n"
    "SECRET_KEY = DEFAULT_SECRET_KEY\n"
    "max_tokens = 4096\n"
    "api_key = os.environ['API_KEY']\n"
    "  password: !vault |\n"
    "The password must be at least 12 characters long.\n"
    # Shapes seen in real documentation and code: tokenizer options, LaTeX macros, C++ scopes,
    # /etc/passwd field lists, postfix maps, numeric constants, doc comments, ternaries.
    "CREATE VIRTUAL TABLE t1 USING fts5(x, tokenize = 'porter ascii');\n"
    "\\let\\textoken=\\command\n"
    "  bool parseToken(AsmToken::TokenKind T);  // AsmToken::Identifier\n"
    "           name:passwd:uid:gid:gecos:dir:shell\n"
    "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\n"
    "    U_UNEXPECTED_TOKEN=0x10100,\n"
    " * @GNUTLS_BAG_SECRET: PKCS-12 bag with secret PKCS-9 keys.\n"
    "    next = ready ? token : fallback_token2;\n"
)


@pytest.fixture(scope="module")
def patterns_only() -> PiiScrubber:
    return PiiScrubber(PiiConfig(ner_models=()))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("domain", ["code", "web"])
def test_every_secret_form_loses_its_value(patterns_only, form, domain):
    result = patterns_only.scrub(FORMS[form], domain)
    for secret in SECRETS:
        assert secret not in result.text, (form, result.text)
    assert sum(result.replaced.values()) == sum(FORMS[form].count(secret) for secret in SECRETS)


@pytest.mark.parametrize("domain", ["code", "web"])
def test_references_placeholders_and_code_are_left_alone(patterns_only, domain):
    result = patterns_only.scrub(NOT_SECRETS, domain)
    assert result.text == NOT_SECRETS
    assert result.replaced == {}


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("Zx9#kQ2!vLp8", True),
        ("hunter22", True),
        ("$HOME_TOKEN", False),
        ("${TOKEN}", False),
        ("<password>", False),
        ("********", False),
        ("/etc/ssl/private.key", False),
        ("https://example.com/token", False),
        ("settings.SECRET_KEY", False),
        ("DEFAULT_SECRET_KEY", False),
        ("required", False),
        ("12345678", False),
    ],
)
def test_literal_secret(value, secret):
    assert literal_secret(value) is secret
