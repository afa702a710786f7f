"""A TCP relay on 127.0.0.1 that a test can cut and restore: the network between two brokers.

Every connection accepted on :attr:`Relay.port` is forwarded to ``target_port``, byte for byte, by two
threads.  :meth:`Relay.cut` closes the listener and every connection (each end sees its peer go away,
as when a site's link fails and the TCP connection is reset) and refuses new ones; :meth:`Relay.restore`
listens again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.servers import free_port


class Relay:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port`` until cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        #: connections accepted so far (each reconnection of the bridge is one)
        self.accepted = 0

    def start(self) -> Relay:
        """Listen (again) and forward."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    restore = start

    def cut(self) -> None:
        """Close the listener and every forwarded connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    stop = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                far = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                near.close()
                continue
            far.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    near.close()
                    far.close()
                    return
                self._sockets += [near, far]
                self.accepted += 1
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
