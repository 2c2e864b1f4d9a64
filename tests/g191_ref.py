"""Independent oracle: a plain-Python transcription of the ITU-T G.191 STL ``g711.c``
algorithms (alaw_compress / alaw_expand / ulaw_compress / ulaw_expand), sample by sample,
exactly as the reference C code computes them.  Used only by the tests."""


def alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4  # one's complement for negative values
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def alaw_expand(code: int) -> int:
    ix = code ^ 0x0055
    ix &= 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant = mant + 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant = mant << (iexp - 1)
    return mant if code > 127 else -mant


def ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = (absno >> segno) & 0x000F
    low_nibble = 0x000F - low_nibble
    code = (high_nibble << 4) | low_nibble
    if x >= 0:
        code |= 0x0080
    return code


def ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x0080 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa = mantissa & 0x000F
    step = 0x0004 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)
