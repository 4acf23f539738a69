#!/usr/bin/python3
"""Exactly-once accounting across the seam, with the bridge SIGKILLed and restarted at random
moments and RabbitMQ restarted once on each side.

  kill_test.py --zkit PATH [--count N] [--kills K] [--seed S]
  (ZKIT_BRIDGE_KILL_COUNT / ZKIT_BRIDGE_KILL_KILLS override --count / --kills: the long run is
   ZKIT_BRIDGE_KILL_COUNT=1000000)

Into RabbitMQ:  zkit send --reliable --count N -> zkit bridge --to-amqp (SIGKILLed K times, the
                broker SIGKILLed and restarted once) -> quorum queue "kill".
                `zkit send` must exit 0 (every batch acknowledged, so confirmed). The queue then
                holds N + D messages: D duplicates, only of batches that were published but not
                acknowledged upstream when the bridge died or lost its connection (docs/bridge.md).
Out of it:      queue "kill" -> zkit bridge --from-amqp --journal (SIGKILLed K times, the broker
                restarted once) -> zkit recv --reliable.
                recv must print every number 1..N (0 lost) and at most N + D lines: the from-AMQP
                side adds no duplicate of its own (journal + redelivery matching). It may print
                fewer: a redelivered copy whose body matches its twin, which this bridge already
                forwarded, is taken for that twin (docs/bridge.md); such copies are counted.
Every wait is bounded. Exit 0, or 1 naming what failed. Prints the figures.
"""

import argparse
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgelib import (Broker, BrokerError, Child, Failure, check, clean_restart,  # noqa
                       credentials, free_ports, queue_depth, stats, tempdir, wait_until)


def tcp():
    return "tcp://127.0.0.1:%d" % free_ports(1)[0]


class Killer:
    """Restarts `make()` after each SIGKILL; K kills at random moments while `busy()`, the broker
    restarted once instead of a bridge kill. With `points` (K ascending thresholds of
    `progress()`) kill i waits for progress to pass points[i] instead of a random pause: a stream
    that drains in about the time of a few pauses then still gets all K kills mid-stream."""

    def __init__(self, make, broker, kills, rng, log, pause=(0.2, 1.5)):
        self.make, self.broker, self.kills, self.rng, self.log = make, broker, kills, rng, log
        self.pause = pause
        self.child = make(0)
        self.done = 0
        self.broker_restarts = 0
        self.broker_at = rng.randrange(kills) if kills else -1

    def run(self, busy, timeout, progress=None, points=None):
        deadline = time.monotonic() + timeout
        while self.done < self.kills and busy():
            check(time.monotonic() < deadline, "the kills took longer than %d s" % timeout)
            if points is None:
                time.sleep(self.rng.uniform(*self.pause))
            else:  # the event: the stream got past this kill's point (no progress for 120 s: a loss)
                last, at = -1, time.monotonic()
                while busy() and (n := progress()) < points[self.done]:
                    if n != last:
                        last, at = n, time.monotonic()
                    check(time.monotonic() - at < 120 and time.monotonic() < deadline,
                          "no progress for 120 s at %d, before kill %d" % (n, self.done + 1))
                    time.sleep(0.01)
            if not busy():
                break
            if self.done == self.broker_at:
                t = time.monotonic()
                self.broker.kill(1)
                self.broker.restart(1)
                self.broker_restarts += 1
                self.log("  RabbitMQ SIGKILLed and restarted (%.1f s)" % (time.monotonic() - t))
            check(self.child.proc.poll() is None,
                  "the bridge died by itself:\n" + self.child.err()[-3000:])
            self.child.kill()
            self.done += 1
            self.child = self.make(self.done)
        self.log("  %d bridge SIGKILLs, %d broker restarts" % (self.done, self.broker_restarts))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--zkit", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    count = int(os.environ.get("ZKIT_BRIDGE_KILL_COUNT", a.count))
    kills = int(os.environ.get("ZKIT_BRIDGE_KILL_KILLS", a.kills))
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    zkit = a.zkit
    log = lambda m: print(m, flush=True)  # noqa: E731
    log("kill test: %d messages each way, %d SIGKILLs per side, seed %d" % (count, kills, seed))
    dir = tempdir()
    keep = os.environ.get("ZKIT_BRIDGE_KEEP") == "1"  # keep logs and data for a post-mortem
    children = []
    try:
        broker = Broker(os.path.join(dir, "rabbitmq"), timeout=90)
        broker.start()
        try:
                creds = credentials(dir, "zkit", "zkit")
                url = "amqp://zkit@127.0.0.1:%d/zkit" % broker.port()
                common = ["--credentials", creds, "--stats-interval", 2, "--connect-timeout-ms", 120000]

                # ---- into RabbitMQ ---------------------------------------------------------------
                t0 = time.monotonic()
                listen = tcp()
                to_args = [zkit, "bridge", "--to-amqp", url, "--listen", listen, "--routing-key",
                           "kill", "--declare-queue", "kill", "--queue-type", "quorum"] + common

                def make_to(i):
                    c = Child("to-%d" % i, to_args, dir)
                    children.append(c)
                    c.wait_line("listen ")
                    return c
                killer = Killer(make_to, broker, kills, rng, log)
                # RabbitMQ 3.10 on one node does not bring back a quorum queue declared in the
                # seconds before a SIGKILL (after the restart its leader is never known and every
                # publish waits: docs/bridge.md). One clean restart after the declare settles it,
                # as in production, where queues are older than the crash.
                wait_until("the bridge to declare the queue",
                           lambda: queue_depth(broker, "kill") is not None, 60)
                clean_restart(broker)
                ack_ms = int(os.environ.get("ZKIT_BRIDGE_KILL_ACK_MS", 600000))
                send = Child("send", [zkit, "send", "--reliable", "--endpoint", listen, "--count",
                                      count, "--ack-timeout-ms", ack_ms, "--progress", 0], dir)
                children.append(send)
                killer.run(lambda: send.proc.poll() is None, 3600)
                check(send.wait(3600) == 0, "zkit send exited %s:\n%s" % (send.proc.returncode,
                                                                          send.err()[-3000:]))
                depth = wait_until("the queue depth", lambda: queue_depth(broker, "kill"), 60)
                dup_in = depth - count
                check(dup_in >= 0, "%d messages lost on the way in (queue holds %d of %d)" %
                      (-dup_in, depth, count))
                killer.child.signal(signal.SIGTERM)
                killer.child.wait(60)
                t_in = time.monotonic() - t0
                log("into RabbitMQ: send acknowledged all %d; queue holds %d: 0 lost, %d duplicates "
                    "(%.1f s)" % (count, depth, dup_in, t_in))

                # ---- out of RabbitMQ -------------------------------------------------------------
                t0 = time.monotonic()
                recv = Child("recv", [zkit, "recv", "--reliable", "--endpoint", "tcp://127.0.0.1:*"],
                             dir)
                children.append(recv)
                ep = recv.wait_line("zkit recv: bound", stream="err")
                controls = []

                def make_from(i):
                    control = tcp()
                    controls.append(control)
                    c = Child("from-%d" % i, [zkit, "bridge", "--from-amqp", url, "--queue", "kill",
                                              "--to", ep, "--journal", os.path.join(dir, "journal"),
                                              "--prefetch", 500, "--batch-records", 256,
                                              "--control", control] + common, dir)
                    children.append(c)
                    c.wait_line("to ")
                    return c

                def lines():  # recv prints a line of size + 1 bytes per message
                    return os.path.getsize(recv.out_path) // (16 + 1)

                def draining():
                    return lines() < 0.9 * depth
                # Draining is fast (20,000 messages in about 2 s of a connected bridge): random
                # pauses let it reach 90% before the K-th kill on some runs, so each kill waits for
                # its point of the stream, drawn in 5-60% of it; smaller batches, so more are in
                # flight.
                points = sorted(int(rng.uniform(0.05, 0.6) * depth) for _ in range(kills))
                killer = Killer(make_from, broker, kills, rng, log)
                killer.run(draining, 3600, progress=lines, points=points)
                check(killer.done == kills, "the queue drained after only %d of %d kills (give "
                      "more messages)" % (killer.done, kills))

                # Drained when recv printed every number and the bridge holds nothing unacked,
                # and RabbitMQ reports no message ready. recv need not print all the queue held:
                # a redelivered to-amqp copy whose body matches the copy this bridge already
                # forwarded is taken for it (docs/bridge.md), so a copy can vanish. The queue's
                # own count alone is no measure: a quorum queue recovering a large backlog reports
                # 0 messages for a while. No progress for 120 s ends the wait (a loss).
                progress = {"lines": -1, "at": time.monotonic()}

                def tally():
                    seen, n = {}, 0
                    with open(recv.out_path, "rb") as f:
                        for line in f:
                            k = int(line.split(b" ", 1)[0])
                            seen[k] = seen.get(k, 0) + 1
                            n += 1
                    return seen, n

                def drained():
                    n = lines()
                    if n != progress["lines"]:
                        progress.update(lines=n, at=time.monotonic())
                    check(time.monotonic() - progress["at"] < 120,
                          "no progress for 120 s at %d lines (the queue held %d), %d distinct of %d"
                          % (n, depth, len(tally()[0]), count))
                    if stats(zkit, controls[-1])["unacked"] != 0:
                        return False
                    return n >= depth or (len(tally()[0]) == count and
                                          queue_depth(broker, "kill") == 0)
                wait_until("the queue to drain through the last bridge", drained, 3600, 0.5)
                last = stats(zkit, controls[-1])
                killer.child.signal(signal.SIGTERM)
                check(killer.child.wait(60) == 0, "the last bridge did not stop cleanly")
                recv.signal(signal.SIGTERM)
                recv.wait(60)
                t_out = time.monotonic() - t0
                left = queue_depth(broker, "kill")
                seen, lines = tally()
                lost = [n for n in range(1, count + 1) if n not in seen]
                dup_out = lines - len(seen)
                vanished = dup_in - dup_out - left
                log("out of RabbitMQ: recv printed %d lines, %d distinct of %d: %d lost, %d duplicates "
                    "(%d came in with the queue, %d copies taken for their twin, %d left in the "
                    "queue), last bridge: suppressed %d, resent from journal %d (%.1f s)" %
                    (lines, len(seen), count, len(lost), dup_out, dup_in, vanished, left,
                     last["suppressed"], last["resent_from_journal"], t_out))
                check(not lost, "%d lost, e.g. %s" % (len(lost), lost[:10]))
                check(dup_out <= dup_in, "the from-amqp side added %d duplicates of its own" %
                      (dup_out - dup_in))
                check(vanished >= 0, "the queue holds %d messages after recv had %d of its %d "
                      "copies" % (left, dup_out, dup_in))
                log("kill test passed: 0 lost each way; %d duplicates downstream, all of them copies "
                    "to-amqp republished" % dup_out)
        finally:
            broker.stop(keep=keep)
        return 0
    except (Failure, BrokerError) as e:
        print("FAILED: %s" % e, file=sys.stderr)
        for c in children[-3:]:
            print("--- %s stderr (tail):\n%s" % (c.name, c.err()[-1500:]), file=sys.stderr)
            if c.proc.poll() is None and os.path.exists("/usr/bin/gdb"):  # a hung bridge: where?
                os.system("gdb -p %d -batch -ex 'thread apply all bt' 2>/dev/null | grep '^#' "
                          "| head -40 >&2" % c.proc.pid)
        return 1
    finally:
        for c in children:
            c.close()
        if keep:
            print("kept %s" % dir, file=sys.stderr)
        else:
            os.system("rm -rf '%s'" % dir)


if __name__ == "__main__":
    sys.exit(main())
