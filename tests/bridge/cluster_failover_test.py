#!/usr/bin/python3
"""Past one machine: zkit -> bridge -> a 3-node RabbitMQ cluster -> bridge -> zkit, with the node
that leads the quorum queue (and serves both bridges) SIGKILLed mid-stream.

  cluster_failover_test.py --zkit PATH [--count N] [--size B] [--modes message,batch]

A 3-node cluster on this machine (tests/support/rabbitmq.py), one quorum queue per mode, declared
on node 1 so that node 1 leads it. Both bridges reach the cluster through a small TCP forwarder
standing in for the operator's load balancer (docs/bridge.md "Past one machine"): a new connection
goes to the first node that accepts it, in the order 1, 2, 3. The stream:

  zkit send --reliable --count N  ->  zkit bridge --to-amqp  ->  queue  ->
  zkit bridge --from-amqp [--journal]  ->  zkit recv --reliable

Once a third of the messages have reached `zkit recv`, node 1 is SIGKILLed: its Raft followers
elect a new leader, both bridges lose their connections and reconnect through the forwarder to
node 2. Then every message must arrive: 0 lost (each message's number is its stable id), `send`
exits 0 (every batch acknowledged, i.e. confirmed by the cluster), and a duplicate may appear only
where docs/bridge.md says: a copy the to-amqp bridge published again after losing its connection
or a nack. The copies are counted exactly: RabbitMQ's copies of one message share its message_id
and differ in x-zkit-copy (which publish), and both bridges run at --log-level trace, a line per
delivery (from-amqp: tag, redelivered, message_id, copy, suppressed) and per batch published
(to-amqp). In message mode a message must arrive downstream as often as the from-amqp bridge
forwarded it (the trace agrees with `recv`), and at most once per copy the queue held: no
redelivery of a copy it had forwarded goes out again, except the failover row of docs/bridge.md
(one older than 4 x --prefetch), counted apart; in batch mode exactly once (a copy is the same
batch, which `recv` drops). A message may be held no more often than the to-amqp bridge
published its batch, and the queue may hold no more extra copies than the to-amqp bridge's
`republished`. The to-amqp bridge also publishes to an audit queue (a fanout exchange bound to
both) that nobody consumes: drained at the end, it shows that RabbitMQ took every message. Its
copy counts are reported but are not the queue's: it is a second Raft log, and a publish that was
not confirmed (the connection lost, or given up after a nack) may sit in one and not the other.
Node 1 is restarted (it rejoins) before the next mode.

Every wait is bounded; the test exits 0, or 1 naming what failed. The long run:
ZKIT_BRIDGE_CLUSTER_COUNT=1000000 ... --budget 1500 (docs/bridge.md, "Past one machine").
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from rabbitmq import Broker, BrokerError  # noqa: E402


BATCH_TYPE = "application/vnd.zkit.batch.v1+msgpack"  # docs/bridge.md
PREFETCH = 2000  # the from-amqp bridge's --prefetch (its default)


class Failure(Exception):
    pass


class Forwarder:
    """A TCP forwarder on 127.0.0.1: each accepted connection is spliced to the first backend port
    that accepts, tried in order. A thread per direction; closes both ends when either does."""

    def __init__(self, backends):
        self.backends = list(backends)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.routed = collections.Counter()  # backend port -> connections
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = None
            for port in self.backends:
                try:
                    upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                    upstream.settimeout(None)
                    self.routed[port] += 1
                    break
                except OSError:
                    continue
            if upstream is None:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.listener.close()


class Receiver:
    """`zkit recv --reliable` with its stdout read by a thread: counts every message number."""

    def __init__(self, zkit, endpoint, log):
        self.proc = subprocess.Popen(
            [zkit, "recv", "--reliable", "--bind", endpoint, "--format", "text"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.seen = collections.Counter()
        self.total = 0
        self.bad = []
        self.lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            word = line.split(b" ", 1)[0]
            with self.lock:
                if word.isdigit():
                    self.seen[int(word)] += 1
                else:
                    self.bad.append(line[:60])
                self.total += 1
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def wait_distinct(self, n, deadline):
        with self.lock:
            while len(self.seen) < n and time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                self.lock.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            return len(self.seen)


def stats(zkit, control):
    r = subprocess.run([zkit, "stats", "--control", control, "--json"], capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        raise Failure("zkit stats --control %s: %s" % (control, r.stderr.strip()))
    return json.loads(r.stdout)


def losses(s):
    """AMQP connections the bridge lost (STATS has them under "amqp")."""
    return s.get("amqp", s)["connection_losses"]


def wait_for(what, predicate, deadline, show=None, step=0.2):
    """Polls predicate (a bridge's counters: they have no event to wait on from outside) until true
    or the deadline, then fails naming what (and show(), the state it saw)."""
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure("timed out waiting for %s%s" % (what, "; " + show() if show else ""))
        time.sleep(step)


def numbers_in(body, content_type):
    """The message numbers in one AMQP body: a zkit batch (batch mode) or one message."""
    if content_type == BATCH_TYPE:
        import msgpack
        batch = msgpack.unpackb(body, raw=True)
        if batch[1] & 7:
            raise Failure("a compressed batch in the audit queue: cannot count its messages")
        return [int(r.split(b" ", 1)[0]) for r in batch[5]]
    return [int(body.split(b" ", 1)[0])]


def audit_copies(broker, audit, deadline):
    """Drains the audit queue (from node 2, alive): (message number -> copies RabbitMQ held,
    AMQP message_id -> copies, message number -> its batch "<producer>-<seq>")."""
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(broker.url(2)))
    ch = conn.channel()
    held = ch.queue_declare(audit, passive=True).method.message_count
    ch.basic_qos(prefetch_count=2000)
    copies, ids, batch_of, numbers_of = collections.Counter(), collections.Counter(), {}, {}
    audit_held = collections.defaultdict(set)  # number -> x-zkit-copy values
    taken = 0
    for method, props, body in ch.consume(audit, inactivity_timeout=10):
        if method is None:
            raise Failure("the audit queue went quiet after %d of %d messages" % (taken, held))
        numbers = numbers_in(body, props.content_type)
        copies.update(numbers)
        ids[props.message_id] += 1
        numbers_of[props.message_id] = numbers
        for n in numbers:
            audit_held[n].add((props.headers or {}).get("x-zkit-copy", 0))
        # message_id: "<producer>-<seq>-<index>" in message mode, "<producer>-<seq>" in batch mode
        batch = (props.message_id if props.content_type == BATCH_TYPE
                 else props.message_id.rsplit("-", 1)[0])
        for n in numbers:
            batch_of[n] = batch
        taken += 1
        if taken % 1000 == 0 or taken == held:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if taken == held or time.monotonic() > deadline:
            break
    ch.cancel()
    conn.close()
    if taken != held:
        raise Failure("drained %d of the audit queue's %d messages in time" % (taken, held))
    return copies, ids, batch_of, numbers_of, audit_held


DELIVERY = re.compile(r"trace: bridge: delivery (\d+) redelivered (\d) matching \d fp \w+ "
                      r"id (\S+) copy (\w+) ")
SUPPRESSED = re.compile(r"trace: bridge: delivery (\d+) suppressed")
PUBLISHED = re.compile(r"trace: bridge: published (\w+-\d+) ")


def trace_deliveries(path, numbers_of):
    """Reads the from-amqp bridge's trace (--log-level trace: a line per delivery, followed at
    once by one more when the bridge suppressed it): (message number -> the x-zkit-copy values of
    the copies the queue delivered, message_id -> the same, (number, copy) -> where in the
    trace (the delivery's position) that copy was forwarded downstream, the lines of deliveries
    naming no copy or an unknown message_id)."""
    held, held_ids = collections.defaultdict(set), collections.defaultdict(set)
    forwards = collections.defaultdict(list)
    refused = []
    pending = None  # (tag, keys, position) of the delivery just read: forwarded unless suppressed
    position = 0

    def forwarded():
        if pending:
            for key in pending[1]:
                forwards[key].append(pending[2])

    with open(path, errors="replace") as f:
        for line in f:
            m = DELIVERY.search(line)
            if m:
                forwarded()
                pending = None
                position += 1
                copy, numbers = int(m[4], 16), numbers_of.get(m[3])
                if copy == 0 or numbers is None:
                    refused.append(line.strip()[:160])
                    continue
                held_ids[m[3]].add(copy)
                for n in numbers:
                    held[n].add(copy)
                pending = (m[1], [(n, copy) for n in numbers], position)
                continue
            m = SUPPRESSED.search(line)
            if m and pending and m[1] == pending[0]:
                pending = None
    forwarded()
    return held, held_ids, forwards, refused


def trace_publishes(path):
    """The to-amqp bridge's trace: batch "<producer>-<seq>" -> how often it was published."""
    published = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            m = PUBLISHED.search(line)
            if m:
                published[m[1]] += 1
    return published


def run_mode(zkit, broker, tmp, mode, count, size, budget, keep=False):
    deadline = time.monotonic() + budget
    queue = "zkit-failover-" + mode
    ctl_queue = lambda *cols: json.loads(broker.ctl(  # noqa: E731
        2, "list_queues", "-p", "zkit", "name", *cols, "--formatter", "json"))
    # The to-amqp bridge publishes to a fanout exchange bound to the queue and to an audit queue
    # that nobody consumes: afterwards the audit queue shows exactly which messages RabbitMQ took
    # twice (a to-amqp republish), by the message numbers in the bodies. Both are declared on
    # node 1, which then leads them (quorum queues: leader on the declaring node).
    import pika
    exchange, audit = queue + "-x", queue + "-audit"
    conn = pika.BlockingConnection(pika.URLParameters(broker.url(1)))
    ch = conn.channel()
    ch.exchange_declare(exchange, exchange_type="fanout", durable=True)
    for q in (queue, audit):
        arguments = {"x-queue-type": "quorum"}
        if q == audit:  # it holds the whole run until the end: on disk, not in memory
            arguments["x-max-in-memory-length"] = 0
        ch.queue_declare(q, durable=True, arguments=arguments)
        ch.queue_bind(q, exchange)
    conn.close()
    leader = [q["leader"] for q in ctl_queue("leader") if q["name"] in (queue, audit)]
    if leader != [broker.nodes[0]["name"]] * 2:
        raise Failure("%s, %s: leaders %s, expected node 1" % (queue, audit, leader))

    fwd = Forwarder([broker.port(1), broker.port(2), broker.port(3)])
    creds = os.path.join(tmp, "credentials")
    with open(creds, "w") as f:
        f.write("zkit:zkit\n")
    url = "amqp://zkit@127.0.0.1:%d/zkit" % fwd.port
    d = os.path.join(tmp, mode)
    os.makedirs(d)
    logs = {n: open(os.path.join(d, n + ".log"), "w+") for n in ("recv", "to", "from", "send")}
    procs = []
    try:
        recv = Receiver(zkit, "ipc://%s/out" % d, logs["recv"])
        procs.append(recv.proc)
        from_args = [zkit, "bridge", "--from-amqp", url, "--credentials", creds, "--queue", queue,
                     "--to", "ipc://%s/out" % d, "--control", "ipc://%s/from-ctl" % d,
                     "--mode", mode, "--heartbeat", "2", "--stats-interval", "0"]
        if mode == "message":
            from_args += ["--journal", os.path.join(d, "journal")]
        from_args += ["--prefetch", str(PREFETCH)]
        level = ["--log-level", "trace"]  # the trace counts RabbitMQ's copies (see below)
        from_args += level
        procs.append(subprocess.Popen(from_args, stdout=subprocess.DEVNULL, stderr=logs["from"]))
        procs.append(subprocess.Popen(
            [zkit, "bridge", "--to-amqp", url, "--credentials", creds, "--listen",
             "ipc://%s/in" % d, "--exchange", exchange, "--routing-key", queue,
             "--control", "ipc://%s/to-ctl" % d,
             "--mode", mode, "--heartbeat", "2", "--stats-interval", "0"] + level,
            stdout=subprocess.DEVNULL, stderr=logs["to"]))
        for side in ("from", "to"):
            wait_for("the %s-amqp bridge to connect" % side,
                     lambda: stats(zkit, "ipc://%s/%s-ctl" % (d, side)).get("state") == "connected",
                     deadline)
        send = subprocess.Popen([zkit, "send", "--reliable", "--connect", "ipc://%s/in" % d,
                                 "--count", str(count), "--size", str(size),
                                 "--ack-timeout-ms", str(int(budget * 1000))],
                                stdout=subprocess.DEVNULL, stderr=logs["send"])
        procs.append(send)

        at_kill = recv.wait_distinct(count // 3, deadline)
        if at_kill < count // 3:
            raise Failure("only %d of %d messages arrived before the kill" % (at_kill, count))
        broker.kill(1)
        killed_at = time.monotonic()
        print("%s mode: SIGKILLed node 1 (queue leader, both bridges' node) after %d of %d "
              "messages had arrived" % (mode, at_kill, count), flush=True)

        try:
            rc = send.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Failure("zkit send did not finish in time")
        if rc != 0:
            logs["send"].seek(0)
            raise Failure("zkit send exited %d: %s" % (rc, logs["send"].read()[-500:]))
        got = recv.wait_distinct(count, deadline)
        # Quiet: nothing pending at the to-amqp side, the queue empty, everything the from-amqp
        # side sent acknowledged downstream and to RabbitMQ; only then can no duplicate follow.
        to_ctl, from_ctl = "ipc://%s/to-ctl" % d, "ipc://%s/from-ctl" % d
        wait_for("the to-amqp bridge to have nothing pending",
                 lambda: stats(zkit, to_ctl)["pending_batches"] == 0, deadline,
                 lambda: json.dumps(stats(zkit, to_ctl)))
        wait_for("queue %s to be empty" % queue,
                 lambda: [q["messages"] for q in ctl_queue("messages")
                          if q["name"] == queue] == [0], deadline,
                 lambda: json.dumps(ctl_queue("messages", "messages_unacknowledged")))
        wait_for("the from-amqp bridge to be acknowledged downstream and by RabbitMQ",
                 lambda: (lambda s: s["unacked"] == 0 and
                          s["batches_acked_downstream"] == s["batches_sent"])(
                              stats(zkit, from_ctl)), deadline,
                 lambda: "%d of %d distinct arrived; %s" % (
                     len(recv.seen), count, json.dumps(stats(zkit, from_ctl))))
        recovered = time.monotonic() - killed_at
        to_stats, from_stats = stats(zkit, to_ctl), stats(zkit, from_ctl)
        for p in procs[1:3]:
            p.send_signal(signal.SIGTERM)
        for p in procs[1:3]:
            p.wait(timeout=30)
        recv.proc.send_signal(signal.SIGTERM)
        recv.proc.wait(timeout=30)
        with recv.lock:
            seen = dict(recv.seen)
            total, bad = recv.total, list(recv.bad)
        copies, amqp_ids, batch_of, numbers_of, audit_held = audit_copies(broker, audit,
                                                                          deadline)
        amqp_dups = sum(n - 1 for n in amqp_ids.values() if n > 1)
        lost = [i for i in range(1, count + 1) if i not in seen]
        extra = sorted(i for i in seen if not 1 <= i <= count)
        dups = {i: n - 1 for i, n in seen.items() if n > 1}
        ndup = sum(dups.values())
        rabbit_dups = {i: n - 1 for i, n in copies.items() if n > 1}
        nrabbit = sum(rabbit_dups.values())
        # What the queue held: RabbitMQ's copies of one message share its message_id but each
        # carries x-zkit-copy (the to-amqp run and connection that published it), and the
        # from-amqp bridge's trace names every delivery with both. The audit queue cannot tell:
        # it is a second Raft log, and a publish that was not confirmed may sit in one queue and
        # not the other (seen: the queue held copies 1, 3 and 4 of a message, the audit queue 1
        # and 4, the to-amqp bridge's third connection having ended on a nack).
        held, held_ids, forwards, refused = trace_deliveries(os.path.join(d, "from.log"),
                                                             numbers_of)
        published = trace_publishes(os.path.join(d, "to.log"))
        queue_dups = sum(len(cs) - 1 for cs in held_ids.values())  # AMQP messages, as republished
        queue_dup_messages = sum(len(cs) - 1 for cs in held.values())  # zkit messages
        # A copy forwarded twice is the from-amqp bridge's own duplicate: allowed only as the
        # failover row of docs/bridge.md (its earlier forwarding was more than 4 x --prefetch
        # deliveries before), every other one is a defect.
        again = {}
        old_failover = 0
        for (i, c), positions in (forwards.items() if mode == "message" else ()):
            for before, now in zip(positions, positions[1:]):
                if now - before > 4 * PREFETCH:
                    old_failover += 1
                else:
                    again[(i, c)] = again.get((i, c), 0) + 1
        nagain = sum(again.values())
        if mode == "message":
            expected = {i: sum(len(forwards[(i, c)]) for c in held.get(i, ())) for i in seen}
        else:  # a copy is the same batch (producer id, seq), which the receiver drops
            expected = {i: 1 for i in seen}
        mismatch = sorted(i for i in seen if seen[i] != expected.get(i, 0))
        over_published = sorted(i for i, cs in held.items()
                                if len(cs) > published.get(batch_of.get(i), 0))
        audit_short = sorted(i for i, cs in held.items() if len(cs) > copies.get(i, 0))
        result = {"mode": mode, "count": count, "size": size, "arrived_at_kill": at_kill,
                  "lost": len(lost), "duplicates_downstream": ndup,
                  "duplicates_in_queue": queue_dup_messages,
                  "amqp_messages_twice_in_queue": queue_dups,
                  "duplicates_in_audit_queue": nrabbit,
                  "amqp_messages_twice_in_audit_queue": amqp_dups,
                  "messages_the_audit_holds_fewer_times": len(audit_short),
                  "audit_short_example": [
                      {"number": i, "queue_copies": ["%x" % c for c in sorted(held[i])],
                       "audit_copies": ["%x" % c for c in sorted(audit_held[i])]}
                      for i in audit_short[:2]],
                  "forwarded_again_by_from_amqp": nagain,
                  "failover_redeliveries_older_than_4x_prefetch": old_failover,
                  "through_s_after_kill": round(recovered, 2), "routed": dict(fwd.routed),
                  "to_amqp": to_stats, "from_amqp": from_stats}
        print("%s mode: %d sent, %d distinct arrived, %d lost; duplicates: %d in the queue (a "
              "to-amqp republish; the audit queue held %d, %d messages fewer times than the "
              "queue), %d downstream (ids %s), %d of them a copy the from-amqp bridge forwarded "
              "again (%d older than 4 x --prefetch); all through %.1fs after the kill; to-amqp: "
              "connection losses %d, nacked %d, republished %d; from-amqp: connection losses %d, "
              "redelivered %d, suppressed %d; connections routed to node ports %s"
              % (mode, count, len(seen), len(lost), queue_dup_messages, nrabbit, len(audit_short),
                 ndup,
                 sorted(dups)[:5], nagain + old_failover, old_failover, recovered,
                 losses(to_stats), to_stats["nacked"], to_stats["republished"],
                 losses(from_stats), from_stats["redelivered"], from_stats["suppressed"],
                 dict(fwd.routed)), flush=True)
        if audit_short:
            print("%s mode: the queue held %d messages more often than the audit queue, e.g. %s"
                  % (mode, len(audit_short), result["audit_short_example"]), flush=True)
        if keep:  # for a post-mortem
            with open(os.path.join(d, "counts.json"), "w") as f:
                json.dump({"seen": seen, "copies": copies, "batch_of": batch_of,
                           "held": {i: sorted(cs) for i, cs in held.items()},
                           "amqp_ids": amqp_ids, "result": result}, f)
        if bad or extra:
            raise Failure("%d lines that are not message numbers (%s), %d numbers out of range"
                          % (len(bad), bad[:3], len(extra)))
        if lost:
            raise Failure("%d messages lost, first %s" % (len(lost), lost[:10]))
        missing_in_audit = [i for i in range(1, count + 1) if i not in copies]
        if missing_in_audit or len(copies) != count:
            raise Failure("the audit queue lacks %d messages (first %s) or has %d foreign ones"
                          % (len(missing_in_audit), missing_in_audit[:5], len(copies) - count))
        if losses(to_stats) < 1:
            raise Failure("the to-amqp bridge never lost its connection: the kill missed it")
        if refused:
            raise Failure("%d deliveries without x-zkit-copy or a known message_id (first %s)"
                          % (len(refused), refused[:3]))
        if mismatch:
            raise Failure("%d messages arrived downstream other than as often as the from-amqp "
                          "bridge's trace forwarded them (batch mode: once) (id: downstream "
                          "copies / queue copies / audit copies %s)" % (
                              len(mismatch),
                              ["%d: %d/%d/%d" % (i, seen[i], len(held.get(i, ())),
                                                 copies.get(i, 0)) for i in mismatch[:20]]))
        if again:
            raise Failure("the from-amqp bridge forwarded %d copies again that docs/bridge.md "
                          "does not allow (id/copy: %s)" % (nagain, sorted(again)[:10]))
        if over_published:
            raise Failure("%d messages held by the queue more often than the to-amqp bridge "
                          "published their batch (first %s)" % (len(over_published),
                                                                 over_published[:5]))
        if queue_dups > to_stats["republished"] or amqp_dups > to_stats["republished"]:
            raise Failure("the queue holds %d, the audit queue %d AMQP messages more than once "
                          "but to-amqp republished only %d"
                          % (queue_dups, amqp_dups, to_stats["republished"]))
        if got != count or total != count + ndup:
            raise Failure("counts disagree: %d distinct, %d lines, %d duplicates" % (
                got, total, ndup))
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        fwd.close()
        for f in logs.values():
            f.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zkit", required=True)
    p.add_argument("--count", type=int,
                   default=int(os.environ.get("ZKIT_BRIDGE_CLUSTER_COUNT", "20000")))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--modes", default="message,batch")
    p.add_argument("--budget", type=float, default=120, help="seconds per mode")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="zkit-cluster-failover.")
    results = []
    try:
        with Broker(os.path.join(tmp, "rabbitmq"), nodes=3, timeout=180) as broker:
            for i, mode in enumerate(a.modes.split(",")):
                if i:
                    broker.restart(1)  # back to three, so that the next kill leaves a majority
                results.append(run_mode(a.zkit, broker, tmp, mode, a.count, a.size, a.budget,
                                        a.keep))
    except (Failure, BrokerError) as e:
        print("FAIL: %s%s" % (e, " (logs in %s)" % tmp if a.keep else ""), file=sys.stderr)
        for name in ("to", "from", "send", "recv"):
            for mode in a.modes.split(","):
                path = os.path.join(tmp, mode, name + ".log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        lines = [x for x in f if "] trace: " not in x]
                        print("--- %s/%s.log\n%s" % (mode, name, "".join(lines[-8:])),
                              file=sys.stderr)
        return 1
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    print("cluster failover: 0 lost in every mode; duplicates downstream, each one a copy the "
          "queue held (copies the from-amqp bridge forwarded again): %s" % ", ".join(
              "%s %d (%d)" % (r["mode"], r["duplicates_downstream"],
                              r["forwarded_again_by_from_amqp"] +
                              r["failover_redeliveries_older_than_4x_prefetch"])
              for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
