"""SIP signalling for the recording server: an RFC 3261 UAS subset over UDP and TCP,
with SDP offer/answer (RFC 3264/4566) for PCMU, PCMA and telephone-event.

The media/recording layer plugs in through one callback: :class:`SipServer` calls
``on_call(call)`` for each new INVITE with a :class:`Call` (identity, negotiated
:class:`Media`, ``answer(local_rtp_port)`` / ``reject(code)`` / ``hangup()``,
``on_end``/``on_update`` callbacks and an ``ended`` event).
"""

from .call import Call, Peer
from .message import SipParseError
from .ports import PortsExhausted, RtpPorts
from .sdp import Media, NoCommonCodec, SdpError
from .server import SipServer
from .transaction import Timers
from .uas import Config, UasCore

__all__ = [
    "Call", "Config", "Media", "NoCommonCodec", "Peer", "PortsExhausted", "RtpPorts",
    "SdpError", "SipParseError", "SipServer", "Timers", "UasCore",
]
