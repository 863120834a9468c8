"""What a failed network connection means, in words for an organiser (used by the IMAP and
SMTP shells; kept out of text.py so that the pure modules import no socket or ssl)."""

from __future__ import annotations

import socket
import ssl

_NOT_TLS = {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"}


def connection_problem(exc: BaseException) -> str:
    """One line for an organiser about a failed connection (IMAP or SMTP), looking through
    the exception's causes: refused, timeout, unknown host, untrusted certificate."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "[Errno 111]" in str(cause):
            return "connection refused (is the host and port right?)"
        if isinstance(cause, socket.timeout | TimeoutError):
            return "no answer (timeout)"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError) and cause.reason in _NOT_TLS:
            return ("the server does not speak TLS on this port (is security right? \"tls\" "
                    "is for ports 993/465, \"starttls\" for 143/587)")
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    return text.replace("\r", " ").replace("\n", " ")[:300]
