# cython: language_level=3
"""Declarations of the DTMF and silence kernels in detect_k.h (C, header-only: the
Goertzel bank is written with 4-wide vector types, which Cython cannot express)."""
from libc.stdint cimport int16_t, int32_t, int64_t

cdef extern from "detect_k.h" nogil:
    ctypedef struct cr_event:
        int32_t kind
        int32_t row
        int64_t start
        int64_t end
        float level
        int32_t digit

    int CR_EV_DIGIT_START
    int CR_EV_DIGIT_END
    int CR_EV_AUDIO_START
    int CR_EV_SILENCE_START

    ctypedef struct dt_config:
        int32_t rate
        int32_t B

    ctypedef struct dt_chan:
        int32_t pos
        int32_t cur
        int64_t nblk
        int64_t dstart
        float dlevel

    void dt_config_init(dt_config *c, int rate, double min_level_dbm0,
                        double normal_twist_db, double reverse_twist_db,
                        double rel_peak_db, double freq_tol, double frac_hit,
                        double frac_present)
    void dt_chan_reset(dt_chan *s)
    void dt_process1(const dt_config *c, dt_chan *s, const int16_t *x, int64_t n,
                     cr_event *ev, int *nev)
    void dt_finish(const dt_config *c, dt_chan *s, int32_t row, cr_event *ev, int *nev)
    int64_t dt_max_events(const dt_config *c, int64_t n)

    ctypedef struct sd_config:
        int32_t rate
        int32_t H
        int32_t min_run

    ctypedef struct sd_chan:
        int64_t nsub
        int32_t pos
        int64_t cand_start
        int64_t silence_start
        int64_t audio_start
        int32_t in_audio
        int32_t audio_seen

    ctypedef struct sd_frame:
        int64_t start
        float level
        int32_t active

    void sd_config_init(sd_config *c, int rate, double threshold_dbm0, double min_audio_ms)
    void sd_chan_reset(sd_chan *s)
    void sd_process(const sd_config *c, sd_chan *s, const int16_t *x, int64_t n, int32_t row,
                    cr_event *ev, int *nev, sd_frame *fr, int *nfr)
    int64_t sd_silence_samples(const sd_chan *s, const sd_config *c)
    float sd_level(const sd_chan *s, const sd_config *c)
    int64_t sd_max_frames(const sd_config *c, int64_t n)

    void cr_run_multi(const dt_config *dc, dt_chan *dst, const sd_config *sc, sd_chan *sst,
                      const int16_t *block, int n, const int64_t *rows, int64_t k,
                      cr_event *ev, int *nev)
