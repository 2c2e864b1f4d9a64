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
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45,
    50, 55, 60, 66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279,
    307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411,
    1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358,
    5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500,
    20350, 22385, 24623, 27086, 29794, 32767,
]
# Dialogic / OKI: 49 steps, 16 * 1.1^n rounded down as the application note lists them.
OKI_STEPS = [
    16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80, 88, 97, 107,
    118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544,
    598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552,
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
        codes = list(codes) + [0]
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
    repeating the last frame."""
    spb = 2 * (block_align - 4 * channels) // channels + 1
    frames = [tuple(f) for f in frames]
    if len(frames) % spb:
        frames += [frames[-1]] * (spb - len(frames) % spb)
    index = [0] * channels
    out = bytearray()
    for b in range(0, len(frames), spb):
        block = frames[b:b + spb]
        heads = bytearray()
        groups = [[] for _ in range(channels)]
        for c in range(channels):
            first = block[0][c]
            heads += struct.pack("<hBB", first, index[c], 0)
            codes, (_, index[c]) = ima_encode_codes([f[c] for f in block[1:]], (first, index[c]))
            for g in range(0, len(codes), 8):
                eight = codes[g:g + 8]
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
        block = data[b:b + block_align]
        chans = []
        ngroups = (len(block) - 4 * channels) // (4 * channels)
        for c in range(channels):
            pred, index, reserved = struct.unpack_from("<hBB", block, 4 * c)
            assert index <= 88 and reserved == 0
            codes = []
            for g in range(ngroups):
                for byte in block[4 * channels + 4 * channels * g + 4 * c:][:4]:
                    codes += [byte & 15, byte >> 4]
            samples, _ = ima_decode_codes(codes, (pred, index), rounding)
            chans.append([pred] + samples)
        frames += list(zip(*chans))
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


def _oki_step(state, code):
    pm, ps, index = state
    step = OKI_STEPS[index]
    d = code & 7
    sign = -1 if code & 8 else 1
    return (clamp(pm + sign * multiply(d, step), -2048, 2047),
            clamp(ps + sign * shift_sum(d, step), -2048, 2047),
            clamp(index + ADJUST[d], 0, 48))


def _oki_err(state, t):
    return (t - state[0]) ** 2 + (t - state[1]) ** 2


def _oki_nearest(state, t):
    """The code whose reconstruction, averaged over both roundings, is nearest to t
    (sign from 2t - pm - ps, ties to the smaller magnitude)."""
    pm, ps, index = state
    u = 2 * t - pm - ps
    sign = 8 if u < 0 else 0
    step = OKI_STEPS[index]
    best = min(range(8), key=lambda d: (abs(abs(u) - multiply(d, step) - shift_sum(d, step)), d))
    return best | sign


def oki_encode_codes(samples, state=(0, 0, 0)):
    """Our OKI encoder, spelled out as a full scan: for each of the 8 magnitudes with the
    sign of the sample's error, the path cost is its own error plus the cheaper of two
    continuations (the nearest code at the next sample, or its magnitude + 1, then the
    nearest at the one after); the smallest total wins (ties: smaller magnitude).  The
    error of a state is (t - pm)^2 + (t - ps)^2 on 12-bit targets t = x >> 4, pm/ps the
    predictors of multiply- and shift-rounding decoders.  Past the end the last sample
    repeats.  state = (pm, index, ps)."""
    pm, index, ps = state
    st = (pm, ps, index)
    t = [x >> 4 for x in samples]
    n = len(t)
    codes = []
    for i in range(n):
        t1, t2, t3 = (t[min(i + k, n - 1)] for k in range(3))
        sign = 8 if 2 * t1 - st[0] - st[1] < 0 else 0
        scored = []
        for d in range(8):
            s1 = _oki_step(st, d | sign)
            first = _oki_err(s1, t1)
            g = _oki_nearest(s1, t2)
            tails = []
            for c2 in ([g] if (g & 7) == 7 else [g, g + 1]):
                s2 = _oki_step(s1, c2)
                s3 = _oki_step(s2, _oki_nearest(s2, t3))
                tails.append(_oki_err(s2, t2) + _oki_err(s3, t3))
            scored.append((first + min(tails), d))
        d = min(scored)[1]
        st = _oki_step(st, d | sign)
        codes.append(d | sign)
    return codes, (st[0], st[2], st[1])
