"""An app for ``bench/serve.py --app bench/serve_app.py:record_until_bye``: record the
call with the built-in app's detection options (silence 10 s, DTMF) until the caller
hangs up, waiting on the SIP call instead of blocking in ``FileRecorder.record``.

It measures the server without the per-call cost of ``record()``'s waiting thread (the
engine wakes every thread blocked in ``record()`` each 20 ms tick)."""


def record_until_bye(channel) -> None:
    channel.answer()
    channel.FileRecorder.start(
        channel.call.id + ".wav", milliseconds_max_silence=10000, max_bytes=0
    )
    channel.wait_for_hangup()
