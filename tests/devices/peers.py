#!/usr/bin/env python3
"""Plain pyzmq peers for the device tests: zkit did not write them.

peers.py ROLE ENDPOINT [options]; ENDPOINT '@ep' binds, '>ep' (or plain) connects.
Roles: push, pull, pub, sub, req, rep. Messages are b'<prefix><i>'. Receivers check that every
message arrived in order per producer (the prefix names the producer) and exit 0, or 1 with a
reason; every wait is bounded by --timeout-ms. Prints 'ok N' or 'FAIL reason' on stdout.
CURVE: --curve-server-key KEY with --curve-public/--curve-secret (client side).
--batch K (push, pull): frames are zkit batches ([1, 0, producer_id, seq, created_ns, records],
built with python msgpack) of K messages each (pull: any K > 0 decodes batches); --count
counts messages.
"""
import argparse
import sys
import time

import msgpack
import zmq


def attach(sock, ep):
    if ep.startswith("@"):
        sock.bind(ep[1:])
    else:
        sock.connect(ep[1:] if ep.startswith(">") else ep)


def curve(sock, args):
    if args.curve_server_key:
        sock.curve_serverkey = args.curve_server_key.encode()
        sock.curve_publickey = args.curve_public.encode()
        sock.curve_secretkey = args.curve_secret.encode()


def fail(reason):
    print("FAIL " + reason, flush=True)
    sys.exit(1)


def check_order(messages, prefixes):
    expected = {p: 0 for p in prefixes}
    for m in messages:
        text = m.decode()
        for p in prefixes:
            if text.startswith(p) and text[len(p):].isdigit():
                if int(text[len(p):]) != expected[p]:
                    fail("out of order: %s after %s%d" % (text, p, expected[p] - 1))
                expected[p] += 1
                break
        else:
            fail("unexpected message %r" % text)


def receive(sock, args):
    sock.RCVTIMEO = args.timeout_ms
    got = []
    try:
        while len(got) < args.count:
            frame = sock.recv()
            if args.batch:
                batch = msgpack.unpackb(frame)
                if batch[0] != 1:
                    fail("not a zkit batch: %r" % frame[:16])
                got.extend(batch[5])
            else:
                got.append(frame)
    except zmq.Again:
        fail("received %d of %d within %d ms" % (len(got), args.count, args.timeout_ms))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["push", "pull", "pub", "sub", "req", "rep"])
    ap.add_argument("endpoint")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--prefix", default="m")
    ap.add_argument("--producers", default="m", help="receivers: comma-separated prefixes")
    ap.add_argument("--topic", default="")
    ap.add_argument("--other-topic", default="", help="pub: also publish this topic in between")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--expect-nothing", action="store_true",
                    help="receivers: succeed only if nothing arrives within --timeout-ms")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--curve-server-key", default="")
    ap.add_argument("--curve-public", default="")
    ap.add_argument("--curve-secret", default="")
    args = ap.parse_args()

    ctx = zmq.Context()
    kind = {"push": zmq.PUSH, "pull": zmq.PULL, "pub": zmq.XPUB, "sub": zmq.SUB,
            "req": zmq.REQ, "rep": zmq.REP}[args.role]
    sock = ctx.socket(kind)
    sock.linger = 5000
    curve(sock, args)
    attach(sock, args.endpoint)
    prefixes = args.producers.split(",")

    if args.role == "push" and args.batch:
        producer_id = sum(args.prefix.encode()) + 1
        records = [b"%s%d" % (args.prefix.encode(), i) for i in range(args.count)]
        for seq, start in enumerate(range(0, args.count, args.batch), start=1):
            sock.send(msgpack.packb([1, 0, producer_id, seq, time.time_ns(),
                                     records[start:start + args.batch]]))
    elif args.role == "push":
        for i in range(args.count):
            sock.send(b"%s%d" % (args.prefix.encode(), i))
    elif args.role == "pub":
        # An XPUB speaks PUB to its peers and shows the subscription arriving from upstream, so
        # publishing starts only once the path through the forwarder is complete.
        sock.RCVTIMEO = args.timeout_ms
        try:
            sub = sock.recv()
        except zmq.Again:
            fail("no subscription arrived within %d ms" % args.timeout_ms)
        if sub != b"\x01" + args.topic.encode():
            fail("unexpected subscription %r" % sub)
        for i in range(args.count):
            if args.other_topic:
                sock.send(b"%s%d" % ((args.other_topic + args.prefix).encode(), i))
            sock.send(b"%s%d" % ((args.topic + args.prefix).encode(), i))
    elif args.role in ("pull", "sub"):
        if args.role == "sub":
            sock.setsockopt(zmq.SUBSCRIBE, args.topic.encode())
        if args.expect_nothing:
            sock.RCVTIMEO = args.timeout_ms
            try:
                m = sock.recv()
                fail("received %r" % m)
            except zmq.Again:
                print("ok 0", flush=True)
                sock.close()
                ctx.term()
                return
        got = receive(sock, args)
        if args.role == "sub":
            got = [m[len(args.topic):] for m in got if m.startswith(args.topic.encode())]
        check_order(got, prefixes)
    elif args.role == "req":
        sock.RCVTIMEO = args.timeout_ms
        for i in range(args.count):
            req = b"%s%d" % (args.prefix.encode(), i)
            sock.send(req)
            try:
                rep = sock.recv()
            except zmq.Again:
                fail("no reply to %r within %d ms" % (req, args.timeout_ms))
            if rep != b"re:" + req:
                fail("reply %r to %r" % (rep, req))
    elif args.role == "rep":
        sock.RCVTIMEO = args.timeout_ms
        for _ in range(args.count):
            try:
                req = sock.recv()
            except zmq.Again:
                fail("no request within %d ms" % args.timeout_ms)
            sock.send(b"re:" + req)
    print("ok %d" % args.count, flush=True)
    sock.close()
    ctx.term()


if __name__ == "__main__":
    main()
