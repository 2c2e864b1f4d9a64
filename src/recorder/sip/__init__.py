"""SIP signalling for the recording server: an RFC 3261 UAS subset over UDP and TCP,
with SDP offer/answer (RFC 3264/4566) for PCMU, PCMA and telephone-event.

The media/recording layer plugs in through one callback: :class:`SipServer` calls
``on_call(call)`` on its event-loop thread for each new INVITE with a :class:`Call`
(identity, negotiated :class:`Media`, ``answer(local_rtp_port)`` / ``reject(code)`` /
``hangup()``, ``on_end``/``on_update`` callbacks and an ``ended`` event)::

    ports = RtpPorts(40000, 49999)

    def on_call(call):                      # must not block: hand work to a worker
        try:
            port = ports.acquire()
        except PortsExhausted:
            call.reject(503)
            return
        call.on_end = lambda c, reason: ports.release(port)   # bye/cancel/timeout/...
        call.on_update = lambda c: ...      # c.media changed: hold/resume, late offer
        call.answer(port)                   # or later, from any thread

    server = SipServer(on_call, host="0.0.0.0", port=5060, max_calls=1000,
                       allow=("10.0.0.0/8",))
    with server.run_in_thread():            # or: await server.start() in your loop
        ...

Limits: messages over 64 KiB or 128 header fields are refused; calls beyond
``max_calls`` get 503; transactions beyond ``8 * max_calls + 64`` get a stateless 503;
every transaction, response cache and ringing call has a timer that removes it.
"""

from .call import Call, Peer
from .message import SipParseError
from .ports import PortsExhausted, RtpPorts
from .sdp import Media, NoCommonCodec, SdpError
from .server import SipServer
from .transaction import Timers
from .uas import Config, UasCore

__all__ = [
    "Call",
    "Config",
    "Media",
    "NoCommonCodec",
    "Peer",
    "PortsExhausted",
    "RtpPorts",
    "SdpError",
    "SipParseError",
    "SipServer",
    "Timers",
    "UasCore",
]
