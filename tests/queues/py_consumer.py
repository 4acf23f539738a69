"""A consumer of `zkit spool --serve` written from docs/protocol.md ("The consumer protocol (v1)")
alone, with pyzmq and msgpack: proof that the page is enough for another implementation.

    py_consumer.py --endpoint EP --group NAME [--prefetch N] [--hold-after K] [--bundle-bytes B]

Joins NAME, handles every batch it is given and acknowledges it (the ACKs of one turn go out as
ranges), sends PING when it has sent nothing for heartbeat_ms, joins again under a new member id
after ERROR 1 or an unanswered PING, and drops (acking again) a redelivery of a batch it acked.
With --hold-after K it stops acknowledging after K batches and holds what comes (a consumer that
is about to die). With --bundle-bytes B its JOIN asks for BUNDLEs of up to B bytes, and it splits
each into its batches. On SIGTERM it sends its acks, waits for a PONG (so the spool has applied them),
sends LEAVE and exits 0. One line per event on stdout:

    JOINED <member>
    DONE <producer_id> <seq> <delivery_count> <records>   handled and acknowledged
    HOLD <producer_id> <seq> <delivery_count> <records>   handled, not acknowledged (--hold-after)
    DUP <producer_id> <seq> <delivery_count>              a redelivery of a batch acked here
    BUNDLE <batches>                                      a BUNDLE came (its batches follow)
    ERROR <code> <text>
    BYE <batches acknowledged>
"""
import argparse
import os
import random
import signal
import sys
import time

import msgpack
import zmq

VERSION = 1
JOIN, JOINED, DELIVER, ACK, NACK, PROGRESS, CREDIT, PING, PONG, LEAVE, ERROR, BUNDLE = range(20, 32)
MAX_RANGES = 1024
HEARTBEAT_TIMEOUT = 5.0  # a PING unanswered this long: the spool is lost, join again
JOIN_RETRY = 1.0

stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def new_member():
    return random.getrandbits(64) or 1


class Consumer:
    def __init__(self, sock, group, prefetch, hold_after, bundle_bytes):
        self.sock, self.group, self.prefetch, self.hold_after = sock, group, prefetch, hold_after
        self.bundle_bytes = bundle_bytes
        self.member = new_member()
        self.joined = False
        self.join_due = 0.0
        self.heartbeat = 1.0
        self.last_sent = 0.0
        self.ping_since = None
        self.pending = []  # tags to acknowledge, as [first, last] ranges
        self.acked = set()  # (producer_id, seq) acknowledged here
        self.acked_count = 0

    def send(self, type_, *fields, member=None):
        self.sock.send(msgpack.packb([VERSION, type_, member or self.member, *fields],
                                     use_bin_type=True))
        self.last_sent = time.monotonic()

    def send_join(self):
        # group, prefetch_batches, prefetch_messages, start earliest (0, 0, 0), ack_wait default,
        # flags 0, and bundle_bytes as a 12th element when BUNDLEs are wanted
        bundle = [self.bundle_bytes] if self.bundle_bytes else []
        self.send(JOIN, self.group, self.prefetch, 0, 0, 0, 0, 0, 0, *bundle)
        self.join_due = time.monotonic() + JOIN_RETRY

    def rejoin(self, leave_old):
        if leave_old:
            self.send(LEAVE)
        self.member = new_member()
        self.joined = False
        self.pending = []  # those tags belonged to the old member
        self.ping_since = None
        self.send_join()

    def queue_ack(self, tag):
        if self.pending and self.pending[-1][1] + 1 == tag:
            self.pending[-1][1] = tag
        else:
            self.pending.append([tag, tag])
        self.acked_count += 1

    def flush_acks(self):
        while self.pending:
            self.send(ACK, self.pending[:MAX_RANGES])
            self.pending = self.pending[MAX_RANGES:]

    def on_deliver(self, tag, count, batch_frame):
        try:
            batch = msgpack.unpackb(batch_frame, raw=True)
            version, flags, producer, seq, _created, records = batch
            if version != 1 or flags != 0:  # a compressed batch: not handled here
                raise ValueError("batch version %r flags %r" % (version, flags))
        except Exception as e:  # noqa: BLE001 - any malformed batch is the same case
            say("ERROR", "bad-batch", e)
            self.send(NACK, tag, 1000)  # it reaches the dead-letter log after max_deliver
            return
        key = (producer, seq)
        if key in self.acked:  # our ack was lost: acknowledge again, do not handle again
            say("DUP", producer, seq, count)
            self.queue_ack(tag)
            return
        if self.hold_after is not None and self.acked_count >= self.hold_after:
            say("HOLD", producer, seq, count, len(records))
            return
        self.acked.add(key)
        self.queue_ack(tag)
        say("DONE", producer, seq, count, len(records))

    def handle(self, frames):
        try:
            msg = msgpack.unpackb(frames[0], raw=False)
        except Exception:  # noqa: BLE001
            return
        if not isinstance(msg, list) or len(msg) < 3 or msg[0] != VERSION:
            return
        type_, member = msg[1], msg[2]
        if member != self.member and not (type_ == ERROR and member == 0):
            return  # an answer to an earlier member id
        self.ping_since = None  # the spool is alive
        if type_ == JOINED:
            if not self.joined:
                self.joined = True
                self.heartbeat = max(msg[5], 1) / 1000.0
                say("JOINED", self.member)
        elif type_ == DELIVER and len(frames) == 2:
            self.on_deliver(msg[3], msg[4], frames[1])
        elif type_ == BUNDLE and len(frames) == 2:
            entries, frame = msg[3], frames[1]
            if sum(e[4] for e in entries) != len(frame):  # cannot tell the batches apart
                say("ERROR", "bad-bundle", len(entries))
                for e in entries:
                    self.send(NACK, e[0], 1000)
                return
            say("BUNDLE", len(entries))
            at = 0
            for tag, count, _segment, _offset, size in entries:
                self.on_deliver(tag, count, frame[at:at + size])
                at += size
        elif type_ == ERROR:
            code, text = msg[3], msg[4]
            say("ERROR", code, text)
            if code == 1:
                self.rejoin(False)

    def timers(self):
        now = time.monotonic()
        if not self.joined:
            if now >= self.join_due:
                self.send_join()
            return
        if self.ping_since is not None and now - self.ping_since >= HEARTBEAT_TIMEOUT:
            self.rejoin(True)
            return
        if now - self.last_sent >= self.heartbeat:
            self.send(PING)
            if self.ping_since is None:
                self.ping_since = now

    def turn(self, timeout_ms):
        if self.sock.poll(timeout_ms):
            for _ in range(256):
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.handle(frames)
        self.flush_acks()
        self.timers()

    def goodbye(self):
        """Acks out, then a PING whose PONG proves the spool applied them, then LEAVE."""
        self.flush_acks()
        if self.joined:
            self.send(PING)
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                if not self.sock.poll(100):
                    continue
                frames = self.sock.recv_multipart()
                msg = msgpack.unpackb(frames[0], raw=False)
                if msg[1] == PONG and msg[2] == self.member:
                    break
            self.send(LEAVE)
        say("BYE", self.acked_count)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--prefetch", type=int, default=8)
    p.add_argument("--hold-after", type=int, default=None)
    p.add_argument("--bundle-bytes", type=int, default=0)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    random.seed(os.urandom(16))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(a.endpoint)
    c = Consumer(sock, a.group, a.prefetch, a.hold_after, a.bundle_bytes)
    try:
        c.send_join()
        while not stopping:
            c.turn(50)
        c.goodbye()
    finally:
        sock.close(linger=2000)
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
