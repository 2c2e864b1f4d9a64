# Type stubs for the compiled DTMF / silence kernels (internal; use recorder.dsp).
from typing import Any

import numpy as np
import numpy.typing as npt

EVENT_DTYPE: np.dtype
FRAME_DTYPE: np.dtype
DIGIT_START: int
DIGIT_END: int
AUDIO_START: int
SILENCE_START: int

def isa() -> int: ...
def set_isa(level: int) -> int: ...

class DtmfConfig:
    params: dict[str, Any]
    def __init__(
        self,
        rate: int,
        min_level_dbm0: float,
        normal_twist_db: float,
        reverse_twist_db: float,
        rel_peak_db: float,
        freq_tol: float,
        frac_hit: float,
        frac_present: float,
    ) -> None: ...
    @property
    def block(self) -> int: ...

class SilenceConfig:
    params: dict[str, Any]
    def __init__(self, rate: int, threshold_dbm0: float, min_audio_ms: float) -> None: ...
    @property
    def hop(self) -> int: ...
    @property
    def min_run(self) -> int: ...

class DtmfState:
    def __init__(self, conf: DtmfConfig) -> None: ...
    def reset(self) -> None: ...
    def process(self, x: npt.NDArray[np.int16]) -> np.ndarray: ...
    def finish(self) -> np.ndarray: ...
    @property
    def samples(self) -> int: ...
    @property
    def current(self) -> tuple[int, int, float] | None: ...

class SilenceState:
    def __init__(self, conf: SilenceConfig) -> None: ...
    def reset(self) -> None: ...
    def process(
        self, x: npt.NDArray[np.int16], frames: bool = ..., events: bool = ...
    ) -> tuple[np.ndarray, np.ndarray]: ...
    samples: int
    silence_samples: int
    silence_start: int
    pending_start: int
    audio_start: int
    in_audio: bool
    audio_seen: bool
    level: float

class MultiState:
    channels: int
    def __init__(
        self, channels: int, dconf: DtmfConfig | None, sconf: SilenceConfig | None
    ) -> None: ...
    def reset(self, rows: npt.NDArray[np.int64]) -> None: ...
    def max_events(self, k: int, n: int) -> int: ...
    def process(
        self,
        block: npt.NDArray[np.int16],
        rows: npt.NDArray[np.int64],
        ev: np.ndarray,
        silence: npt.NDArray[np.int64],
        flags: npt.NDArray[np.uint8],
        level: npt.NDArray[np.float32],
    ) -> int: ...
    def finish(self, rows: npt.NDArray[np.int64]) -> np.ndarray: ...
    def current(self, slot: int) -> tuple[int, int, float] | None: ...
    def silence_state(self, slot: int) -> dict[str, Any] | None: ...

def onsets(
    banks: list[MultiState],
    block: npt.NDArray[np.int16],
    slots: npt.NDArray[np.int64],
    silence: npt.NDArray[np.int64],
    seen: npt.NDArray[np.uint8],
    digit_start: npt.NDArray[np.int64],
    digit: npt.NDArray[np.int32],
    audio_start: npt.NDArray[np.int64],
) -> None: ...
