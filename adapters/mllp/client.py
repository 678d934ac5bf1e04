"""A small MLLP sender for tests and the benchmark (not used by the engine itself).

* :class:`MllpClient`: blocking, one connection; ``send`` one message and read its ACK(s), or
  ``send_many`` pipelined.
* :func:`send_load`: N messages over C connections at a fixed total rate (or as fast as the
  ACKs allow), recording each message's ACK latency and MSA-1/MSA-2.
* :func:`synthetic_adt`: an ADT^A01 with a synthetic national id (month + 80), for load tests.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Self

from adapters.mllp.framing import Frame, FrameDecoder, encode
from engine.ids import synthetic_fnr


@dataclass(frozen=True, slots=True)
class Ack:
    code: str  # MSA-1
    control_id: str  # MSA-2
    raw: bytes

    @classmethod
    def read(cls, raw: bytes) -> Ack:
        fs = chr(raw[3]) if raw.startswith(b"MSH") and len(raw) > 3 else "|"
        for seg in raw.decode("iso-8859-1").replace("\n", "\r").split("\r"):
            if seg.startswith("MSA"):
                f = seg.split(fs)
                return cls(f[1] if len(f) > 1 else "", f[2] if len(f) > 2 else "", raw)
        return cls("", "", raw)


def synthetic_adt(
    seq: int,
    *,
    app: str = "LOADGEN",
    facility: str = "TEST",
    event: str = "A01",
    message_type: str = "ADT",
    control_id: str | None = None,
) -> bytes:
    """A small valid HL7 v2.5 message whose patient has a synthetic FNR."""
    day, individual = 1 + seq % 28, seq % 500
    fnr = (
        synthetic_fnr(day, 1 + (seq // 28) % 12, 1970 + seq % 40, individual)
        or synthetic_fnr(day, 1, 1980, (individual + 1) % 500)
        or "01818012345"
    )
    cid = control_id or f"MSG{seq:08d}"
    return (
        f"MSH|^~\\&|{app}|{facility}|ENJOURNAL|HOSP|20240102030405||{message_type}^{event}^ADT_A01|{cid}|P|2.5\r"
        f"EVN|{event}|20240102030405\r"
        f"PID|1||{fnr}^^^^FNR||Testesen^Test{seq}||19800101|M\r"
        f"PV1|1|I\r"
    ).encode("ascii")


class MllpClient:
    """Blocking MLLP client over one connection."""

    def __init__(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, timeout: float = 10.0
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        self.sock = ssl_context.wrap_socket(sock, server_hostname=host) if ssl_context else sock
        self.decoder = FrameDecoder(64 * 1024 * 1024)
        self._frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Raw bytes on the wire (garbage, partial frames...)."""
        self.sock.sendall(data)

    def send(self, message: bytes, acks: int = 1) -> list[Ack]:
        self.write(encode(message))
        return [self.read_ack() for _ in range(acks)]

    def send_many(self, messages: list[bytes]) -> list[Ack]:
        self.write(b"".join(encode(m) for m in messages))
        return [self.read_ack() for _ in messages]

    def read_ack(self) -> Ack:
        while not self._frames:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            self._frames += [e.payload for e in self.decoder.feed(data) if isinstance(e, Frame)]
        return Ack.read(self._frames.pop(0))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per ACK
    acks: list[Ack] = field(default_factory=list)
    elapsed: float = 0.0

    def percentile(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else 0.0


async def _one_connection(
    host: str, port: int, messages: list[bytes], interval: float, ssl_context: ssl.SSLContext | None, result: LoadResult
) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_context)
    sent: list[float] = []

    async def receive() -> None:
        decoder, got = FrameDecoder(64 * 1024 * 1024), 0
        while got < len(messages):
            data = await reader.read(65536)
            if not data:
                raise ConnectionError(f"closed after {got} of {len(messages)} ACKs")
            for e in decoder.feed(data):
                if isinstance(e, Frame):
                    result.latencies.append(time.perf_counter() - sent[got])
                    result.acks.append(Ack.read(e.payload))
                    got += 1

    receiving = asyncio.create_task(receive())
    start = time.perf_counter()
    for i, m in enumerate(messages):
        if interval > 0:
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        sent.append(time.perf_counter())
        writer.write(encode(m))
        await writer.drain()
    await receiving
    writer.close()


async def send_load(
    host: str,
    port: int,
    messages: list[bytes],
    *,
    connections: int = 1,
    rate: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> LoadResult:
    """Send ``messages`` round-robin over ``connections`` at ``rate`` msg/s in total (None: no pacing).

    Expects exactly one ACK per message (original mode).
    """
    result = LoadResult()
    parts = [messages[i::connections] for i in range(connections)]
    interval = connections / rate if rate else 0.0
    t0 = time.perf_counter()
    await asyncio.gather(*(_one_connection(host, port, p, interval, ssl_context, result) for p in parts if p))
    result.elapsed = time.perf_counter() - t0
    return result
