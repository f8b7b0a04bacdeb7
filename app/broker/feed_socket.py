"""A websocket-client connection that reads its socket in large chunks.

websocket-client reads a frame as two or three exact-size reads (the header, the extended length,
the payload), and each is a `recv` system call that lets go of the GIL. On a busy process (the
risk monitor evaluating runs in another thread) every one of them then waits for the GIL to come
back, up to the interpreter's switch interval (5 ms): a burst of a hundred tick frames already
in the kernel's buffer took hundreds of milliseconds to read. Here one `recv` takes whatever the
kernel holds (up to READ_CHUNK bytes) and the frames in it are parsed from memory, so a burst costs
one system call, not three per frame. Nothing else changes: the library still parses the frames,
answers pings and reports timeouts and a closed socket.
"""

from __future__ import annotations

import websocket

READ_CHUNK = 65536


class BufferedWebSocket(websocket.WebSocket):
    """`websocket.WebSocket` whose frame reader is served from a buffer of the socket's bytes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pending = b""
        self._offset = 0

    def _recv(self, bufsize: int) -> bytes:
        # The frame reader calls this (bound in WebSocket.__init__) for at most `bufsize` bytes.
        if self._offset >= len(self._pending):
            self._pending, self._offset = super()._recv(READ_CHUNK), 0
        start = self._offset
        self._offset = min(start + bufsize, len(self._pending))
        return self._pending[start:self._offset]


def connect(url: str, timeout: float) -> websocket.WebSocket:
    # websocket-client checks each text frame's UTF-8 in pure Python (about 100 µs a tick frame, the
    # feed thread's largest cost); json.loads of the bytes rejects invalid UTF-8 anyway (feed._recv).
    return websocket.create_connection(url, timeout=timeout, enable_multithread=True, skip_utf8_validation=True,
                                       class_=BufferedWebSocket)
