"""A voicemail-style application for ``recorder serve``.

Run it with::

    recorder serve examples/voicemail.py:voicemail --sip 0.0.0.0:5060 \
        --media-root /var/spool/voicemail --rtp-ports 40000-49999

For each call: answer, record the caller's message to ``<To user>/<call id>.wav`` until
3 seconds of silence, a DTMF key (barge-in), two minutes, or the caller hanging up; then
hang up.  The cause and file are in the server's "call end" log line.
"""

import re


def mailbox(to_uri: str) -> str:
    """The mailbox folder: the user part of the To URI, kept to safe characters."""
    user = to_uri.split(":", 1)[-1].split("@", 1)[0]
    return re.sub(r"[^A-Za-z0-9_+-]", "_", user)[:64] or "unknown"


def voicemail(channel):
    channel.answer()
    channel.FileRecorder.record(
        f"{mailbox(channel.call.to_uri)}/{channel.call.id}.wav",
        milliseconds_max_silence=3000,
        barge_in=True,
        seconds_timeout=120,
    )
    channel.hangup()
