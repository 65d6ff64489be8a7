"""The API worker supervisor's crash-loop rule, with real forked processes."""

import socket
import sys

from cli.workers import CRASH_LOOP, Supervisor, listening_socket


def test_workers_that_keep_failing_at_start_stop_the_lot_with_exit_1() -> None:
    sock = listening_socket("127.0.0.1", 0)
    supervisor = Supervisor(2, sock, lambda bound: sys.exit(3))
    try:
        assert supervisor.run() == 1
    finally:
        sock.close()
    assert CRASH_LOOP + 1 <= supervisor.forked <= CRASH_LOOP + 2, "replaced until the loop was seen, then no more"
    assert not supervisor.started


def test_the_listening_socket_is_inherited_by_workers() -> None:
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.get_inheritable()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    finally:
        sock.close()
