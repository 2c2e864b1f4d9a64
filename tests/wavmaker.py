"""Hand-built WAV files for reader tests (chunk order, odd sizes, broken headers)."""

import struct


def chunk(cid: bytes, body: bytes, pad: bool = True) -> bytes:
    out = cid + struct.pack("<I", len(body)) + body
    return out + (b"\0" if pad and len(body) % 2 else b"")


def fmt_body(tag=1, channels=1, rate=8000, bits=16, block_align=None, extra=None) -> bytes:
    block_align = block_align if block_align is not None else channels * max(bits // 8, 1)
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, bits)
    if extra is not None:
        body += struct.pack("<H", len(extra)) + extra
    return body


def riff(*chunks: bytes, form=b"WAVE", size=None) -> bytes:
    payload = form + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(payload) if size is None else size) + payload


def extensible(tag: int, channels=1, rate=8000, bits=16, valid_bits=None, mask=4) -> bytes:
    guid = struct.pack("<H", tag) + bytes.fromhex("000000001000800000aa00389b71")
    ext = struct.pack("<HI", valid_bits or bits, mask) + guid
    return fmt_body(0xFFFE, channels, rate, bits, extra=ext)
