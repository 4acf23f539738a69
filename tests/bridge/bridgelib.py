"""What the bridge tests share: child processes of zkit (killed only by the pids started here),
endpoints read from their output, STATS, free ports, bounded waits."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from rabbitmq import Broker, BrokerError, free_ports  # noqa: E402,F401

PYTHON = "/usr/bin/python3"  # Debian's, with python3-pika


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Child:
    """One process; stdout/stderr to files in `dir` (read them with out()/err())."""

    def __init__(self, name, args, dir, stdin=None, env=None):
        self.name = name
        self.args = [str(a) for a in args]
        self.out_path = os.path.join(dir, name + ".out")
        self.err_path = os.path.join(dir, name + ".err")
        self.out_f = open(self.out_path, "ab")
        self.err_f = open(self.err_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.out_f, stderr=self.err_f,
                                     stdin=subprocess.PIPE if stdin is not None else None,
                                     env=env)
        if stdin is not None:
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_line(self, prefix, timeout=30, stream="out"):
        """The rest of the first line of stdout (or stderr) that starts with prefix."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out() if stream == "out" else self.err()
            for line in text.splitlines():
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
            if self.proc.poll() is not None:
                raise Failure("%s exited %s before printing '%s':\n%s" %
                              (self.name, self.proc.returncode, prefix, self.err()[-3000:]))
            time.sleep(0.05)
        raise Failure("%s printed no '%s' within %d s" % (self.name, prefix, timeout))

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("%s did not end within %d s:\n%s" % (self.name, timeout,
                                                               self.err()[-3000:]))

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        self.out_f.close()
        self.err_f.close()


def stats(zkit, control, tries=4):
    """The device's STATS as a dict. A bridge busy connecting (a synchronous AMQP handshake of up
    to its --amqp timeout) answers late: a few tries of 5 s each."""
    for attempt in range(tries):
        r = subprocess.run([zkit, "stats", "--control", control, "--json", "--timeout-ms", "5000"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return json.loads(r.stdout)
    raise Failure("zkit stats %s: %s" % (control, r.stderr))


def wait_until(what, cond, timeout=60, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise Failure("timed out after %d s waiting for %s" % (timeout, what))


def pika_channel(broker, user="zkit", password="zkit", vhost="zkit"):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(broker.url(1, user, password, vhost)))
    return conn, conn.channel()


def queue_depth(broker, queue, user="zkit", password="zkit", vhost="zkit"):
    """Ready messages in queue (a passive declare), or None when it does not exist."""
    import pika
    conn, ch = pika_channel(broker, user, password, vhost)
    try:
        return ch.queue_declare(queue=queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as e:
        if e.reply_code == 404:
            return None
        raise Failure("passive declare of %s: %s" % (queue, e))
    finally:
        if conn.is_open:
            conn.close()


def clean_restart(broker):
    """rabbitmqctl stop on the node this test started, then the same node again. RabbitMQ 3.10
    on one node does not bring back a quorum queue declared in the seconds before a SIGKILL (its
    leader is never known after the restart: docs/bridge.md); one clean restart settles it."""
    broker.ctl(1, "stop")
    broker.nodes[0]["proc"].wait(timeout=60)
    broker.restart(1)


def credentials(dir, user, password):
    path = os.path.join(dir, "credentials-%s" % user)
    with open(path, "w") as f:
        f.write("%s:%s\n" % (user, password))
    os.chmod(path, 0o600)
    return path


def tempdir():
    return tempfile.mkdtemp(prefix="zkit-bridge-test.")
