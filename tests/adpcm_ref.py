"""Plain-Python transcriptions of the ADPCM algorithms, the oracle the compiled codecs are
checked against (slow: for short signals only).  Written from the published algorithms
(IMA "Recommended Practices for Enhancing Digital Audio Compatibility in Multimedia
Systems" 1992; Dialogic "Dialogic ADPCM Algorithm" application note, 1988), not from the
code under test: every table is rebuilt here from its definition.
"""

from __future__ import annotations

import struct

# IMA step sizes (the standard's table).
IMA_STEPS = [
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    16,
    17,
    19,
    21,
    23,
    25,
    28,
    31,
    34,
    37,
    41,
    45,
    50,
    55,
    60,
    66,
    73,
    80,
    88,
    97,
    107,
    118,
    130,
    143,
    157,
    173,
    190,
    209,
    230,
    253,
    279,
    307,
    337,
    371,
    408,
    449,
    494,
    544,
    598,
    658,
    724,
    796,
    876,
    963,
    1060,
    1166,
    1282,
    1411,
    1552,
    1707,
    1878,
    2066,
    2272,
    2499,
    2749,
    3024,
    3327,
    3660,
    4026,
    4428,
    4871,
    5358,
    5894,
    6484,
    7132,
    7845,
    8630,
    9493,
    10442,
    11487,
    12635,
    13899,
    15289,
    16818,
    18500,
    20350,
    22385,
    24623,
    27086,
    29794,
    32767,
]
# Dialogic / OKI: 49 steps, 16 * 1.1^n rounded down as the application note lists them.
OKI_STEPS = [
    16,
    17,
    19,
    21,
    23,
    25,
    28,
    31,
    34,
    37,
    41,
    45,
    50,
    55,
    60,
    66,
    73,
    80,
    88,
    97,
    107,
    118,
    130,
    143,
    157,
    173,
    190,
    209,
    230,
    253,
    279,
    307,
    337,
    371,
    408,
    449,
    494,
    544,
    598,
    658,
    724,
    796,
    876,
    963,
    1060,
    1166,
    1282,
    1411,
    1552,
]
ADJUST = [-1, -1, -1, -1, 2, 4, 6, 8]


def clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def shift_sum(d: int, step: int) -> int:
    """IMA reference reconstruction: step/8 + the step halves the code bits select."""
    v = step >> 3
    if d & 4:
        v += step
    if d & 2:
        v += step >> 1
    if d & 1:
        v += step >> 2
    return v


def multiply(d: int, step: int) -> int:
    """FFmpeg-style reconstruction ((2d+1) * step) / 8, rounded down."""
    return ((2 * d + 1) * step) >> 3


# --- IMA --------------------------------------------------------------------------------------


def ima_encode_codes(samples, state=(0, 0)):
    """The reference IMA coder (successive approximation), as audioop.lin2adpcm runs it:
    returns (codes, (predictor, index))."""
    pred, index = state
    codes = []
    for x in samples:
        step = IMA_STEPS[index]
        diff = x - pred
        sign = 8 if diff < 0 else 0
        diff = abs(diff)
        code = 0
        vp = step >> 3
        if diff >= step:
            code = 4
            diff -= step
            vp += step
        step >>= 1
        if diff >= step:
            code |= 2
            diff -= step
            vp += step
        step >>= 1
        if diff >= step:
            code |= 1
            vp += step
        pred = clamp(pred - vp if sign else pred + vp, -32768, 32767)
        index = clamp(index + ADJUST[code], 0, 88)
        codes.append(code | sign)
    return codes, (pred, index)


def ima_decode_codes(codes, state=(0, 0), rounding="shift"):
    """IMA decoder; rounding 'shift' (the reference: audioop, sox, libsndfile) or
    'multiply' (FFmpeg's adpcm_ima_wav)."""
    pred, index = state
    recon = shift_sum if rounding == "shift" else multiply
    out = []
    for c in codes:
        v = recon(c & 7, IMA_STEPS[index])
        pred = clamp(pred - v if c & 8 else pred + v, -32768, 32767)
        index = clamp(index + ADJUST[c & 7], 0, 88)
        out.append(pred)
    return out, (pred, index)


def pack_high_first(codes) -> bytes:
    if len(codes) % 2:
        codes = [*codes, 0]
    return bytes((codes[i] << 4) | codes[i + 1] for i in range(0, len(codes), 2))


def unpack_high_first(data) -> list[int]:
    out = []
    for b in data:
        out += [b >> 4, b & 15]
    return out


def ima_wav_block_align(rate: int, channels: int) -> int:
    per = rate * channels
    size = 256 if per < 12000 else 512 if per < 23000 else 1024
    group = 4 * channels
    return max(size // group, 2) * group


def ima_wav_encode(frames, channels: int, block_align: int) -> bytes:
    """WAV IMA ADPCM blocks of interleaved frames [(s0, s1, ...), ...]: header = first
    frame, step index carried over from the previous block, last block padded by
    repeating the last frame; each block's codes from the search encoder (_Search),
    which looks ahead within the block only."""
    spb = 2 * (block_align - 4 * channels) // channels + 1
    frames = [tuple(f) for f in frames]
    if len(frames) % spb:
        frames += [frames[-1]] * (spb - len(frames) % spb)
    index = [0] * channels
    out = bytearray()
    for b in range(0, len(frames), spb):
        block = frames[b : b + spb]
        heads = bytearray()
        groups = [[] for _ in range(channels)]
        for c in range(channels):
            first = block[0][c]
            heads += struct.pack("<hBB", first, index[c], 0)
            codes, (_, _, index[c]) = IMA_SEARCH.codes(
                [f[c] for f in block[1:]], (first, first, index[c])
            )
            for g in range(0, len(codes), 8):
                eight = codes[g : g + 8]
                groups[c].append(bytes(eight[i] | (eight[i + 1] << 4) for i in range(0, 8, 2)))
        out += heads
        for g in range(len(groups[0])):
            for c in range(channels):
                out += groups[c][g]
    return bytes(out)


def ima_wav_decode(data: bytes, channels: int, block_align: int, rounding="shift"):
    """Frames of WAV IMA ADPCM data (whole blocks, or a last block of whole groups)."""
    frames = []
    for b in range(0, len(data), block_align):
        block = data[b : b + block_align]
        chans = []
        ngroups = (len(block) - 4 * channels) // (4 * channels)
        for c in range(channels):
            pred, index, reserved = struct.unpack_from("<hBB", block, 4 * c)
            assert index <= 88 and reserved == 0
            codes = []
            for g in range(ngroups):
                for byte in block[4 * channels + 4 * channels * g + 4 * c :][:4]:
                    codes += [byte & 15, byte >> 4]
            samples, _ = ima_decode_codes(codes, (pred, index), rounding)
            chans.append([pred, *samples])
        frames += list(zip(*chans, strict=True))
    return frames


# --- OKI --------------------------------------------------------------------------------------


def oki_decode_codes(codes, state=(0, 0), rounding="multiply"):
    """OKI decoder on 12-bit predictors; returns 16-bit samples (p << 4).  rounding
    'multiply' (FFmpeg adpcm_ima_oki, sox, libsndfile) or 'shift' (spandsp)."""
    pred, index = state
    recon = multiply if rounding == "multiply" else shift_sum
    out = []
    for c in codes:
        v = recon(c & 7, OKI_STEPS[index])
        pred = clamp(pred - v if c & 8 else pred + v, -2048, 2047)
        index = clamp(index + ADJUST[c & 7], 0, 48)
        out.append(pred << 4)
    return out, (pred, index)


class _Search:
    """Our search encoder (OKI, and IMA in WAV files), spelled out as a full scan.

    For each sample, each of the 8 magnitudes with the sign of the sample's error is
    scored by its own error plus the cheaper of two continuations (the nearest code at
    the next sample, or its magnitude + 1, then the nearest at the one after); the
    smallest total wins (ties: smaller magnitude).  A state is (pm, ps, index): the
    predictors of a multiply-rounding and of a shift-rounding decoder; its error at
    target t is (t - pm)^2 + (t - ps)^2.  "Nearest" is nearest to the mean of the two
    roundings.  Past the end of the samples the last one repeats."""

    def __init__(self, steps, lo, hi):
        self.steps, self.lo, self.hi = steps, lo, hi

    def step(self, state, code):
        pm, ps, index = state
        s = self.steps[index]
        d = code & 7
        sign = -1 if code & 8 else 1
        return (
            clamp(pm + sign * multiply(d, s), self.lo, self.hi),
            clamp(ps + sign * shift_sum(d, s), self.lo, self.hi),
            clamp(index + ADJUST[d], 0, len(self.steps) - 1),
        )

    @staticmethod
    def err(state, t):
        return (t - state[0]) ** 2 + (t - state[1]) ** 2

    def nearest(self, state, t):
        pm, ps, index = state
        u = 2 * t - pm - ps
        s = self.steps[index]
        d = min(range(8), key=lambda d: (abs(abs(u) - multiply(d, s) - shift_sum(d, s)), d))
        return d | (8 if u < 0 else 0)

    def codes(self, targets, state):
        n = len(targets)
        out = []
        for i in range(n):
            t1, t2, t3 = (targets[min(i + k, n - 1)] for k in range(3))
            sign = 8 if 2 * t1 - state[0] - state[1] < 0 else 0
            scored = []
            for d in range(8):
                s1 = self.step(state, d | sign)
                g = self.nearest(s1, t2)
                tails = []
                for c2 in [g] if (g & 7) == 7 else [g, g + 1]:
                    s2 = self.step(s1, c2)
                    s3 = self.step(s2, self.nearest(s2, t3))
                    tails.append(self.err(s2, t2) + self.err(s3, t3))
                scored.append((self.err(s1, t1) + min(tails), d))
            d = min(scored)[1]
            state = self.step(state, d | sign)
            out.append(d | sign)
        return out, state


OKI_SEARCH = _Search(OKI_STEPS, -2048, 2047)
IMA_SEARCH = _Search(IMA_STEPS, -32768, 32767)


def oki_encode_codes(samples, state=(0, 0, 0)):
    """Our OKI encoder (see _Search) on 12-bit targets x >> 4.  state = (pm, index, ps)."""
    pm, index, ps = state
    codes, (pm, ps, index) = OKI_SEARCH.codes([x >> 4 for x in samples], (pm, ps, index))
    return codes, (pm, index, ps)
