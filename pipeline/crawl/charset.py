"""Bytes of an HTML page to Unicode: the HTTP header's charset, then the page's own `<meta>`
declaration, then detection (the order of the WHATWG encoding-sniffing algorithm, byte-order mark
first). Labels map through the WHATWG table, so `iso-8859-1` and `us-ascii` decode as windows-1252
and `gb2312` as GBK, as browsers do. Mojibake repair is normalise's job, not this one.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

# How far into the page browsers look for a <meta> declaration (WHATWG "prescan": 1024 bytes; real
# pages put long <head>s first, so look a little further).
META_PRESCAN_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
# More undecodable bytes than this share says the declaration is wrong, and detection is tried; fewer
# are damage in a page that is what it declares, decoded as declared with U+FFFD.
MAX_DECLARED_ERROR_RATE = 0.001
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True)
class DecodedPage:
    text: str
    charset: str  # the Python codec used
    source: str  # bom | header | meta | detected | fallback (the declared one failed; detection used)
    replaced: int  # characters that could not be decoded (now U+FFFD)


def codec_for(label: str | None) -> str | None:
    """The codec a browser uses for a charset label; None for an unknown label."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        if label not in ("x-sjis", "x-gbk", "x-euc-jp", "x-user-defined"):
            return None
    codec = map_encoding_to_html5(label)
    return codec or None


def meta_charset(head: bytes) -> str | None:
    """The charset a `<meta charset>` or `<meta http-equiv="Content-Type" content="...; charset=">` names."""
    match = _META_CHARSET.search(head[:META_PRESCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_html(body: bytes, header_charset: str | None) -> DecodedPage:
    """Decode `body`; never raises. Undecodable bytes become U+FFFD and are counted."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _finish(body[len(bom) :], codec, "bom")
    declared = [("header", codec_for(header_charset)), ("meta", codec_for(meta_charset(body)))]
    for source, codec in declared:
        if codec is None:
            continue
        text = _strict(body, codec)
        if text is not None:
            return DecodedPage(text, codec, source, 0)
        lenient = _finish(body, codec, source)
        if lenient.replaced <= len(body) * MAX_DECLARED_ERROR_RATE:
            return lenient  # a few bad bytes in a page that is what it says (a cut multi-byte character)
        detected = codec_for(detect_encoding(body))
        if detected and detected != codec and (text := _strict(body, detected)) is not None:
            return DecodedPage(text, detected, "fallback", 0)
        return lenient
    return _finish(body, codec_for(detect_encoding(body)) or "utf-8", "detected")


def _finish(body: bytes, codec: str, source: str) -> DecodedPage:
    text = _strict(body, codec)
    if text is not None:
        return DecodedPage(text, codec, source, 0)
    text = body.decode(codec, errors="replace")
    return DecodedPage(text, codec, source, text.count("\ufffd"))
