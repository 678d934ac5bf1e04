"""A stubborn MLLP sender for the fault suite: resends whatever was not acknowledged.

:class:`ResendingSender` runs in a thread and sends its messages in pipelined windows over one
connection (:class:`adapters.mllp.client.MllpClient`). When the connection breaks (the adapter was
killed, the broker is away and the adapter gave up, a read timed out) it reconnects, retrying until
``give_up`` seconds have passed, and sends every message of the window that has no ACK yet again,
as a real HL7 sender does. Any ACK (AA, AE or AR) settles a message. ``written`` holds the control
ids put on the wire at least once (for the "recovered" counter); ``mid_window`` is set while a
written window still waits for ACKs (a fault injected then hits messages between receive and ACK).

:func:`disconnect_mid_frame` writes the first part of a frame and closes the socket.
"""

from __future__ import annotations

import threading
import time

from adapters.mllp.client import MllpClient
from adapters.mllp.framing import encode
from bench.chaos_data import Sent


class ResendingSender(threading.Thread):
    def __init__(
        self,
        port: int,
        messages: list[Sent],
        *,
        window: int = 20,
        pace: float = 0.0,
        give_up: float = 120.0,
        read_timeout: float = 45.0,
    ) -> None:
        super().__init__(name="chaos-mllp-sender", daemon=True)
        self.port, self.messages, self.window, self.pace = port, messages, window, pace
        self.give_up, self.read_timeout = give_up, read_timeout
        self.acks: dict[str, str] = {}
        self.written: set[str] = set()
        self.resends = 0
        self.reconnects = 0
        self.error: str | None = None
        self._lock = threading.Lock()
        self.mid_window = threading.Event()  # set while a written window waits for its ACKs
        self._client: MllpClient | None = None

    def sent_so_far(self) -> set[str]:
        with self._lock:
            return set(self.written)

    def run(self) -> None:
        try:
            for i in range(0, len(self.messages), self.window):
                self._deliver(self.messages[i : i + self.window])
                if self.pace:
                    time.sleep(self.pace)
        except Exception as exc:  # noqa: BLE001 - reported, not raised in the thread
            self.error = type(exc).__name__
        finally:
            if self._client is not None:
                self._client.close()

    def _deliver(self, chunk: list[Sent]) -> None:
        deadline = time.monotonic() + self.give_up
        while True:
            todo = [m for m in chunk if m.control_id not in self.acks]
            if not todo:
                return
            try:
                self._send(todo)
            except (OSError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError("gave up resending") from None
                self._drop_connection()
                time.sleep(0.3)

    def _send(self, todo: list[Sent]) -> None:
        client = self._connect()
        with self._lock:
            if any(m.control_id in self.written for m in todo):
                self.resends += sum(1 for m in todo if m.control_id in self.written)
            self.written.update(m.control_id for m in todo)
        client.write(b"".join(encode(m.raw) for m in todo))
        self.mid_window.set()
        try:
            for _ in todo:
                ack = client.read_ack()
                if ack.control_id:
                    self.acks.setdefault(ack.control_id, ack.code)
        finally:
            self.mid_window.clear()

    def _connect(self) -> MllpClient:
        if self._client is None:
            self._client = MllpClient("127.0.0.1", self.port, timeout=self.read_timeout)
            self.reconnects += 1
        return self._client

    def _drop_connection(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def disconnect_mid_frame(port: int, message: Sent, fraction: float = 0.5) -> None:
    """Open a connection, write the first ``fraction`` of ``message``'s frame, and close it."""
    frame = encode(message.raw)
    client = MllpClient("127.0.0.1", port, timeout=10.0)
    try:
        client.write(frame[: max(2, int(len(frame) * fraction))])
        time.sleep(0.05)
    finally:
        client.close()
