"""HTTP content codings for the sample crawl, written in Python so their bytes depend on nothing installed.

The compressed bodies inside crawl.warc.gz are part of the sample's content: the test compares them
even when zlib differs (it only looks through the outer gzip), so they cannot come from zlib or from
the brotli library, whose output changes between releases. DEFLATE here is one fixed-Huffman block
with greedy LZ77 matching (RFC 1951), wrapped as gzip (RFC 1952) or zlib (RFC 1950); brotli is one
uncompressed meta-block (RFC 7932, section 9.2), which every brotli decoder reads. zlib is used only
for its CRC-32 and Adler-32 checksums, which are fixed by the formats.
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_right

_LENGTH_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163,
                195, 227, 258)  # fmt: skip
_LENGTH_EXTRA = (0,) * 8 + (1,) * 4 + (2,) * 4 + (3,) * 4 + (4,) * 4 + (5,) * 4 + (0,)
_DIST_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
              4097, 6145, 8193, 12289, 16385, 24577)  # fmt: skip
_DIST_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)
WINDOW = 32_768
MAX_CHAIN = 48  # candidate positions tried per match


class _Bits:
    """A little-endian bit writer: fields go least significant bit first, Huffman codes most significant first."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, nbits: int) -> None:
        self.acc |= value << self.n
        self.n += nbits
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def code(self, code: int, nbits: int) -> None:
        self.put(int(format(code, f"0{nbits}b")[::-1], 2), nbits)

    def flush(self) -> bytes:
        """Pad the last byte with zero bits and return everything written."""
        if self.n:
            self.out.append(self.acc & 0xFF)
            self.acc = self.n = 0
        return bytes(self.out)


def _symbol(bits: _Bits, symbol: int) -> None:
    """A literal/length symbol in the fixed Huffman code (RFC 1951, 3.2.6)."""
    if symbol < 144:
        bits.code(0x30 + symbol, 8)
    elif symbol < 256:
        bits.code(0x190 + symbol - 144, 9)
    elif symbol < 280:
        bits.code(symbol - 256, 7)
    else:
        bits.code(0xC0 + symbol - 280, 8)


def _match(bits: _Bits, length: int, distance: int) -> None:
    i = bisect_right(_LENGTH_BASE, length) - 1
    _symbol(bits, 257 + i)
    bits.put(length - _LENGTH_BASE[i], _LENGTH_EXTRA[i])
    j = bisect_right(_DIST_BASE, distance) - 1
    bits.code(j, 5)
    bits.put(distance - _DIST_BASE[j], _DIST_EXTRA[j])


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE: one final fixed-Huffman block, greedy longest matches over the last 32 KiB."""
    bits = _Bits()
    bits.put(1, 1)  # BFINAL
    bits.put(1, 2)  # BTYPE 01: fixed Huffman codes
    chains: dict[bytes, list[int]] = {}
    n, i = len(data), 0

    def remember(pos: int) -> None:
        if pos + 3 <= n:
            chains.setdefault(data[pos : pos + 3], []).append(pos)

    while i < n:
        best_len = best_dist = 0
        limit = min(258, n - i)
        if limit >= 3:
            for j in reversed(chains.get(data[i : i + 3], [])[-MAX_CHAIN:]):
                if i - j > WINDOW:
                    break
                length = 3
                while length < limit and data[j + length] == data[i + length]:
                    length += 1
                if length > best_len:
                    best_len, best_dist = length, i - j
                    if length == limit:
                        break
        if best_len >= 3:
            _match(bits, best_len, best_dist)
            for pos in range(i, i + best_len):
                remember(pos)
            i += best_len
        else:
            _symbol(bits, data[i])
            remember(i)
            i += 1
    _symbol(bits, 256)  # end of block
    return bits.flush()


def gzip_member(data: bytes) -> bytes:
    """gzip with mtime 0, no file name, OS unknown."""
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    return header + deflate(data) + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def zlib_stream(data: bytes) -> bytes:
    """The zlib format that HTTP calls `deflate`: CMF 0x78 (32 KiB window), FLG 0x01, DEFLATE, Adler-32."""
    return b"\x78\x01" + deflate(data) + struct.pack(">I", zlib.adler32(data))


def brotli_stored(data: bytes) -> bytes:
    """A brotli stream (window 2**16) holding `data` in one uncompressed meta-block, then the last, empty one."""
    bits = _Bits()
    bits.put(0, 1)  # WBITS: 16
    head = b""
    if data:
        nibbles = max(4, ((len(data) - 1).bit_length() + 3) // 4)
        if nibbles > 6:
            raise ValueError("over 16 MiB: one meta-block cannot hold it")
        bits.put(0, 1)  # ISLAST
        bits.put(nibbles - 4, 2)  # MNIBBLES
        bits.put(len(data) - 1, 4 * nibbles)  # MLEN - 1
        bits.put(1, 1)  # ISUNCOMPRESSED: the bytes follow from the next byte boundary
        head = bits.flush()
        bits = _Bits()
    bits.put(1, 1)  # ISLAST
    bits.put(1, 1)  # ISLASTEMPTY
    return head + data + bits.flush()
