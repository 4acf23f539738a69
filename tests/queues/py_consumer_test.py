"""Runs tests/queues/py_consumer.py (a consumer written from docs/protocol.md alone) against
`zkit spool --serve`: N messages from `zkit send --reliable`; consumer A acknowledges some batches,
then holds what it gets and is SIGKILLed; consumer B joins the same group and takes the rest, in
BUNDLEs (A takes DELIVERs: both forms are covered). At the
end every message has been acknowledged (0 lost), the batches A held came to B with
delivery_count > 1, a batch was handled twice only where A died holding it, and the spool's group
shows no lag and nothing pending.

    py_consumer_test.py ZKIT [MESSAGES]      (exit 0: pass, 1: fail with a reason on stderr)
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONSUMER = os.path.join(HERE, "py_consumer.py")
GROUP = "py-workers"
PER_BATCH = 50
PREFETCH_A = 4
ACK_FIRST = 20  # batches A acknowledges before it starts holding


class Lines:
    """Collects a child's stdout lines on a thread."""

    def __init__(self, proc, name):
        self.proc, self.name, self.lines = proc, name, []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("%s: no %s within %.0f s; last lines: %s" %
                         (self.name, what, timeout, self.lines[-5:]))
                self.cond.wait(min(left, 0.5))

    def snapshot(self):
        with self.cond:
            return list(self.lines)


started = []


def fail(why):
    sys.stderr.write("py_consumer_test: FAIL: %s\n" % why)
    stop_all()
    sys.exit(1)


def stop_all():
    for p in started:
        if p.poll() is None:
            p.kill()  # by the pid we started
            p.wait(timeout=10)


def start(args, name):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr)
    started.append(p)
    return p, Lines(p, name)


def batches(lines, kind):
    """{(producer, seq): (delivery_count, records)} of the DONE/HOLD lines."""
    out = {}
    for line in lines:
        w = line.split()
        if w and w[0] == kind:
            out[(int(w[1]), int(w[2]))] = (int(w[3]), int(w[4]))
    return out


def main():
    zkit = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    tmp = tempfile.TemporaryDirectory(prefix="zkit-pyconsumer-")
    spool, spool_out = start([zkit, "spool", "--dir", os.path.join(tmp.name, "spool"),
                              "--listen", "tcp://127.0.0.1:*", "--serve", "tcp://127.0.0.1:*",
                              "--control", "tcp://127.0.0.1:*", "--consumer-heartbeat", "1s",
                              "--stats-interval", "0"], "spool")
    spool_out.wait_for(lambda ls: any(l.startswith("control ") for l in ls), 20, "endpoints")
    eps = dict(l.split(" ", 1) for l in spool_out.snapshot() if " " in l)
    listen, serve, control = eps["listen"], eps["serve"], eps["control"]

    a, a_out = start([sys.executable, CONSUMER, "--endpoint", serve, "--group", GROUP,
                      "--prefetch", str(PREFETCH_A), "--hold-after", str(ACK_FIRST)], "consumer A")
    a_out.wait_for(lambda ls: any(l.startswith("JOINED") for l in ls), 20, "JOINED")
    send = subprocess.Popen([zkit, "send", "--reliable", "--connect", listen, "--count",
                             str(total), "--size", "16", "--batch-max", str(PER_BATCH),
                             "--progress", "0"], stderr=subprocess.PIPE)
    started.append(send)
    # A acks ACK_FIRST batches, then holds its whole prefetch: it dies holding them.
    a_out.wait_for(lambda ls: sum(l.startswith("HOLD") for l in ls) >= PREFETCH_A, 60,
                   "%d HOLD lines" % PREFETCH_A)
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    a_lines = a_out.snapshot()
    a_done, a_held = batches(a_lines, "DONE"), batches(a_lines, "HOLD")

    b, b_out = start([sys.executable, CONSUMER, "--endpoint", serve, "--group", GROUP,
                      "--prefetch", "8", "--bundle-bytes", "4096"], "consumer B")
    _, send_err = send.communicate(timeout=120)
    if send.returncode != 0:
        fail("zkit send exited %d: %s" % (send.returncode, send_err.decode(errors="replace")))

    def all_done(lines):
        done = dict(a_done)
        done.update(batches(lines, "DONE"))
        return sum(r for _, r in done.values()) >= total
    b_out.wait_for(all_done, 90, "acknowledgement of all %d messages" % total)
    b.send_signal(signal.SIGTERM)
    if b.wait(timeout=20) != 0:
        fail("consumer B exited %d after SIGTERM" % b.returncode)
    b_lines = b_out.snapshot()
    b_done = batches(b_lines, "DONE")
    if not any(l.startswith("BYE") for l in b_lines):
        fail("consumer B did not say BYE")
    bundles = [int(l.split()[1]) for l in b_lines if l.startswith("BUNDLE ")]
    if not bundles:
        fail("consumer B asked for BUNDLEs and got none")
    if any(l.startswith("BUNDLE ") for l in a_out.snapshot()):
        fail("consumer A did not ask for BUNDLEs, yet got one")

    done = dict(a_done)
    done.update(b_done)
    records = sum(r for _, r in done.values())
    if records != total:
        fail("%d distinct messages acknowledged, %d sent" % (records, total))
    for key, (count, _) in a_held.items():
        if key not in b_done:
            fail("batch %s held by A never reached B" % (key,))
        if b_done[key][0] < 2:
            fail("batch %s came back to B with delivery_count %d" % (key, b_done[key][0]))
    for key, (count, _) in b_done.items():
        if count > 1 and key not in a_held and key not in a_done:
            fail("batch %s redelivered (count %d) though A never had it" % (key, count))
        if key in a_done and count < 2:
            fail("batch %s handled by A and B, yet B's delivery_count is %d" % (key, count))

    listing = subprocess.run([zkit, "groups", "list", "--control", control, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    if listing.returncode != 0:
        fail("zkit groups list exited %d: %s" % (listing.returncode, listing.stderr.decode()))
    groups = {g["name"]: g for g in json.loads(listing.stdout.decode().strip())["groups"]}
    if GROUP not in groups:
        fail("the spool lists no group %s: %s" % (GROUP, sorted(groups)))
    state = groups[GROUP]["state"]
    if state.get("lag_batches", -1) != 0 or state.get("pending", -1) != 0:
        fail("group %s at the spool: lag %s, pending %s (want 0, 0)" %
             (GROUP, state.get("lag_batches"), state.get("pending")))

    spool.send_signal(signal.SIGTERM)
    if spool.wait(timeout=20) != 0:
        fail("zkit spool exited %d after SIGTERM" % spool.returncode)
    redelivered = sum(1 for c, _ in b_done.values() if c > 1)
    print("py_consumer_test: %d messages in %d batches acknowledged, 0 lost; A acked %d, held %d "
          "(all redelivered to B with delivery_count > 1); B acked %d, %d of them redeliveries, "
          "in %d BUNDLEs of up to %d batches" %
          (total, len(done), len(a_done), len(a_held), len(b_done), redelivered, len(bundles),
           max(bundles)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
