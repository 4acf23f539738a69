"""A reliable-link sender written from docs/protocol.md alone, with pyzmq and msgpack: proof that
the document is enough for another implementation. Sends BATCHES batches of PER messages
("9:<n>") as producer 777 over session 12345, honouring credit and window, answering NACK and
RESET, and exits 0 once every batch is acknowledged (1 on timeout).

    py_reliable_sender.py ENDPOINT BATCHES PER
"""
import sys
import time

import msgpack
import zmq

VERSION, HELLO, WELCOME, DATA, ACK, NACK, PING, RESET = 1, 1, 2, 3, 4, 5, 6, 7
SESSION, PRODUCER, WINDOW = 12345, 777, 8


def main():
    endpoint, batches, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Our own context, closed and terminated before we exit: pyzmq skips termination at
    # interpreter exit, and the process could then end before queued frames are written.
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint)
    try:
        return run(sock, batches, per)
    finally:
        # Nothing unacknowledged is left when run() succeeds; a bounded linger keeps a dead
        # receiver from holding the exit.
        sock.close(linger=1000)
        ctx.term()


def run(sock, batches, per):
    def control(*fields):
        sock.send(msgpack.packb([VERSION, *fields]))

    def batch(seq):
        first = (seq - 1) * per
        records = [("9:%d" % n).encode() for n in range(first, first + per)]
        return msgpack.packb([1, 0, PRODUCER, seq, time.time_ns(), records], use_bin_type=True)

    acked, credit, next_send, ready = 0, 0, 1, False
    hello_due = 0.0
    deadline = time.time() + 30
    while acked < batches and time.time() < deadline:
        now = time.time()
        if not ready and now >= hello_due:
            control(HELLO, SESSION, acked, WINDOW)
            hello_due = now + 0.2
        while (ready and next_send <= batches and next_send <= credit
               and next_send - 1 - acked < WINDOW):
            header = msgpack.packb([VERSION, DATA, SESSION, next_send])
            sock.send_multipart([header, batch(next_send)])
            next_send += 1
        if not sock.poll(100):
            if ready:
                control(PING, SESSION, next_send - 1)
            continue
        msg = msgpack.unpackb(sock.recv())
        if msg[0] != VERSION or msg[2] != SESSION:
            continue
        kind = msg[1]
        if kind in (WELCOME, ACK):
            acked = max(acked, msg[3])
            next_send = max(next_send, acked + 1)
            if kind == WELCOME and not ready:
                ready, credit, next_send = True, msg[4], acked + 1
            else:
                credit = max(credit, msg[4])
        elif kind == NACK and acked < msg[3] < next_send:
            next_send = msg[3]
        elif kind == RESET:
            ready, hello_due = False, 0.0
    return 0 if acked == batches else 1


if __name__ == "__main__":
    sys.exit(main())
