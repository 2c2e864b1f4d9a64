# Type stubs for the recorder engine's compiled core (internal; see recorder.engine).
import numpy as np
import numpy.typing as npt

CONSTANTS: dict[str, int]

class JobState:
    active: bool
    n: int
    committed: int
    audio_seen: bool
    cause: int
    digit_start: int
    digit: str | None
    first_audio: int
    frames: int

class Bank:
    capacity: int
    flush_bytes: int
    sync_every: int
    write_ns: int
    def __init__(
        self,
        capacity: int = ...,
        flush_bytes: int = ...,
        sync_every: int = ...,
    ) -> None: ...
    def open(self, slot: int) -> None: ...
    def close(self, slot: int) -> None: ...
    def pending(self, slot: int) -> int: ...
    def media(self, slot: int) -> int: ...
    def reset_media(self, slot: int) -> None: ...
    def push_s16(self, slot: int, x: npt.NDArray[np.int16]) -> int: ...
    def push_g711(self, slot: int, codes: object, ulaw: bool) -> int: ...
    def push_zeros(self, slot: int, n: int) -> int: ...
    def generation(self, slot: int) -> int: ...
    def set_accept(self, slot: int, on: bool) -> None: ...
    def push_rows(
        self,
        slots: npt.NDArray[np.int64],
        gens: npt.NDArray[np.int64],
        block: npt.NDArray[np.int16] | npt.NDArray[np.uint8],
        codec: int,
    ) -> npt.NDArray[np.int64]: ...
    def idle(self, ticks: int = 1) -> npt.NDArray[np.int64]: ...
    def watch_gaps(self, slot: int, origin: float, floor: float, slack: float) -> None: ...
    def fill_gaps(self, now: float, ticks: int, gap: int) -> int: ...
    def fill_gap(self, slot: int, due: int, gap: int) -> int: ...
    def ready(self, n: int, among: npt.NDArray[np.int64] | None = ...) -> npt.NDArray[np.int64]: ...
    def take(self, slots: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int16]: ...
    def start_job(
        self,
        slot: int,
        fmt: int,
        timeout_at: int,
        size_at: int,
        max_sil: int,
        init_sil: int,
        barge: bool,
        hold: int,
        rate: int = ...,
        max_frames: int = ...,
    ) -> None: ...
    def feed(
        self,
        slots: npt.NDArray[np.int64],
        block: npt.NDArray[np.int16],
        silence: npt.NDArray[np.int64],
        seen: npt.NDArray[np.uint8],
        digit_start: npt.NDArray[np.int64],
        digit: npt.NDArray[np.int32],
        audio_start: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int32]: ...
    def end_job(self, slot: int, cause: int, commit_held: bool) -> None: ...
    def barge(self, slot: int, digit: int, start: int) -> bool: ...
    def take_out(self, slot: int) -> bytes: ...
    def write_to(
        self,
        slot: int,
        fd: int,
        header: bytes,
        header_at: int,
        data_at: int,
        fields: list[tuple[int, int, int, int]],
        block_align: int,
        per_block: int,
    ) -> None: ...
    def end_output(self, slot: int, write_rest: bool) -> tuple[int, int, int]: ...
    def job(self, slot: int) -> JobState: ...
    def active(self, slot: int) -> bool: ...
