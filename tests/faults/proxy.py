"""A TCP proxy in front of the private Redis or PostgreSQL that cuts every connection the
moment the client sends a chosen byte string (a command of the step, a state write), and can
then refuse connections for a while: the network failing in the middle of a step."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Cut:
    trigger: bytes  # client bytes that set off the cut
    forward: bool = False  # pass the chunk with the trigger on first (it reaches the server)
    down_for: float = 0.0  # then refuse connections this long
    done: threading.Event = field(default_factory=threading.Event)


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.cut: Cut | None = None
        self.down_until = 0.0
        self.mute = False  # drop what the server says: its reply to the trigger is lost
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()  # "connection refused" as far as the client can tell
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                cut = self.cut
                if upstream and cut is not None and not cut.done.is_set() and cut.trigger in data:
                    if cut.forward:
                        self.mute = True
                        dst.sendall(data)
                        time.sleep(0.1)  # the server acts on it; its reply goes nowhere
                    self.down_until = time.monotonic() + cut.down_for
                    cut.done.set()
                    self.drop()
                    self.mute = False
                    return
                if not upstream and self.mute:
                    continue
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def drop(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self.drop()


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    proxy = Proxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
