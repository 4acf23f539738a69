#!/usr/bin/python3
"""The bridge against a real RabbitMQ (tests/support/rabbitmq.py starts one node of Debian's
rabbitmq-server on ports of its own). One case per run:

  bridge_test.py --zkit PATH --case article-in | article-out | bad-input | usage | reconnect

article-in   the article's producer (section 4.1) -> queue hello -> zkit bridge --from-amqp ->
             zkit spool -> zkit recv --reliable, which prints the ten messages.
article-out  zkit send --reliable -> zkit bridge --to-amqp -> queue hello -> the article's consumer
             (section 4.2), which prints " [x] Received 'Hello World i'" for each.
             The article's programs are article_producer.py / article_consumer.py, copied from
             the article with one line changed (line 4: host and port); the port of the test's
             broker replaces 5672 when they run.
bad-input    a message over zkit's limits, a body that is not a batch in batch mode, an unreachable
             URL, wrong credentials, a queue that does not exist, an exchange that does not exist:
             each a clear error, the exit codes of the other commands, nothing lost.
usage        flag errors exit 2 with one line (no broker needed).
reconnect    RabbitMQ restarted under both bridges mid-stream: every message arrives.
Exit 0, or 1 naming what failed; every wait is bounded.
"""

import argparse
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgelib import (PYTHON, Broker, BrokerError, Child, Failure, check, clean_restart,  # noqa
                       credentials, free_ports, pika_channel, queue_depth, stats, tempdir,
                       wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))


def article(name, dir, port):
    """The article's program with the broker's port in place of 5672 (the only change)."""
    with open(os.path.join(HERE, name)) as f:
        text = f.read()
    check(text.count("('127.0.0.1', 5672)") == 1, name + ": the host/port line is not as copied")
    path = os.path.join(dir, name)
    with open(path, "w") as f:
        f.write(text.replace("('127.0.0.1', 5672)", "('127.0.0.1', %d)" % port))
    return path


def tcp():
    return "tcp://127.0.0.1:%d" % free_ports(1)[0]


def case_article_in(zkit, broker, dir):
    guest = credentials(dir, "guest", "guest")
    url = "amqp://guest@127.0.0.1:%d/" % broker.port()
    r = subprocess.run([PYTHON, article("article_producer.py", dir, broker.port())],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "the article's producer failed: " + r.stderr)
    sent = ["Hello World %d" % i for i in range(10)]
    check(r.stdout.splitlines() == [" [x] Sent '%s'" % m for m in sent],
          "the article's producer printed:\n" + r.stdout)
    recv = Child("recv", [zkit, "recv", "--reliable", "--endpoint", "tcp://127.0.0.1:*",
                          "--count", 10, "--timeout-ms", 60000], dir)
    recv_ep = recv.wait_line("zkit recv: bound", stream="err")
    spool = Child("spool", [zkit, "spool", "--dir", os.path.join(dir, "spool"), "--listen",
                            "tcp://127.0.0.1:*", "--forward", recv_ep], dir)
    spool_ep = spool.wait_line("listen ")
    control = tcp()
    bridge = Child("bridge", [zkit, "bridge", "--from-amqp", url, "--credentials", guest,
                              "--queue", "hello", "--to", spool_ep, "--control", control,
                              "--metrics", "127.0.0.1:0"], dir)
    try:
        metrics = "http://%s" % bridge.wait_line("metrics ")
        check(recv.wait(60) == 0, "zkit recv exited %s:\n%s" % (recv.proc.returncode, recv.err()))
        check(recv.out().splitlines() == sent, "zkit recv printed:\n" + recv.out())
        # RabbitMQ is acked after the spool acknowledged: the queue drains.
        wait_until("the bridge to ack all ten to RabbitMQ",
                   lambda: stats(zkit, control)["messages_acked_amqp"] == 10, 30)
        wait_until("queue hello to be empty",
                   lambda: queue_depth(broker, "hello", "guest", "guest", "/") == 0, 30)
        s = stats(zkit, control)
        check(s["device"] == "bridge" and s["direction"] == "from-amqp", "STATS: %s" % s)
        check(s["deliveries"] == 10 and s["messages_acked_downstream"] == 10, "STATS: %s" % s)
        table = subprocess.run([zkit, "stats", "--control", control], capture_output=True,
                               text=True, timeout=30)
        check(table.returncode == 0 and
              ["acked", "to", "RabbitMQ", "10"] in [l.split() for l in table.stdout.splitlines()],
              "zkit stats: " + table.stdout + table.stderr)
        # /metrics is written from the same figures; ready: RabbitMQ and the spool connected.
        page = urllib.request.urlopen(metrics + "/metrics", timeout=10).read().decode()
        check('zkit_bridge_acked_amqp_messages_total{device="bridge",name="bridge",'
              'direction="from-amqp",socket="amqp"} 10\n' in page, "/metrics:\n" + page)
        ready = urllib.request.urlopen(metrics + "/readyz", timeout=10)
        check(ready.status == 200, "/readyz answered %s" % ready.status)
        for c in (bridge, spool):
            c.signal(signal.SIGTERM)
            check(c.wait(30) == 0, "%s exited %s on SIGTERM:\n%s" % (c.name, c.proc.returncode,
                                                                     c.err()[-2000:]))
        check("final statistics: from-amqp" in bridge.err(), "no final statistics line")
    finally:
        for c in (bridge, spool, recv):
            c.close()
    print("article-in: the article's ten messages went through the bridge and the spool")


def case_article_out(zkit, broker, dir):
    guest = credentials(dir, "guest", "guest")
    url = "amqp://guest@127.0.0.1:%d/" % broker.port()
    consumer = Child("consumer", [PYTHON, "-u", article("article_consumer.py", dir,
                                                        broker.port())], dir)
    listen = tcp()
    control = tcp()
    bridge = Child("bridge", [zkit, "bridge", "--to-amqp", url, "--credentials", guest,
                              "--listen", listen, "--routing-key", "hello", "--control", control,
                              "--stats-interval", 1], dir)
    try:
        bridge.wait_line("listen ")
        lines = "".join("Hello World %d\n" % i for i in range(10)).encode()
        send = Child("send", [zkit, "send", "--reliable", "--endpoint", listen,
                              "--ack-timeout-ms", 60000], dir, stdin=lines)
        # send exits 0 once every batch was acknowledged, i.e. confirmed by RabbitMQ (if the
        # consumer had not declared hello yet, the bridge's publishes come back and go again).
        check(send.wait(90) == 0, "zkit send exited %s:\n%s" % (send.proc.returncode, send.err()))
        want = [" [x] Received 'Hello World %d'" % i for i in range(10)]
        wait_until("the article's consumer to print ten messages",
                   lambda: len(consumer.out().splitlines()) >= 10, 30)
        time.sleep(0.5)  # a duplicate would show up now; none may
        check(consumer.out().splitlines() == want, "the consumer printed:\n" + consumer.out())
        s = stats(zkit, control)
        check(s["confirmed"] >= 10 and s["messages_acked_upstream"] == 10, "STATS: %s" % s)
        wait_until("a statistics line in the log (--stats-interval 1)",
                   lambda: "(10 msgs), published" in bridge.err(), 10)
        bridge.signal(signal.SIGTERM)
        check(bridge.wait(30) == 0, "bridge exited %s" % bridge.proc.returncode)
    finally:
        consumer.close()
        bridge.close()
    print("article-out: the article's consumer printed the ten messages zkit send sent")


def zkit_batch(producer, seq, records):
    """A zkit batch frame built by hand (docs/wire-format.md): [1, 0, producer, seq, ns, [bin]]."""
    import msgpack
    return msgpack.packb([1, 0, producer, seq, time.time_ns(), list(records)], use_bin_type=True)


def run_fail(zkit, args, dir, timeout=60):
    r = subprocess.run([zkit, "bridge"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, cwd=dir)
    return r.returncode, r.stderr


def case_bad_input(zkit, broker, dir):
    creds = credentials(dir, "zkit", "zkit")
    url = "amqp://zkit@127.0.0.1:%d/zkit" % broker.port()
    conn, ch = pika_channel(broker)
    for q in ("big", "nb"):
        ch.queue_declare(queue=q + ".dlq", durable=True)
        ch.queue_declare(queue=q, durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q + ".dlq"})
    ch.queue_declare(queue="big2", durable=True)

    # 1. Over the limits (message mode, --max-record-bytes 1024): rejected, dead-lettered, counted;
    #    the messages around it go through.
    for body in (b"small 1", b"x" * 2048, b"small 2"):
        ch.basic_publish(exchange="", routing_key="big", body=body)
    recv = Child("recv-big", [zkit, "recv", "--reliable", "--endpoint", "tcp://127.0.0.1:*",
                              "--count", 2, "--timeout-ms", 60000], dir)
    ep = recv.wait_line("zkit recv: bound", stream="err")
    control = tcp()
    bridge = Child("bridge-big", [zkit, "bridge", "--from-amqp", url, "--credentials", creds,
                                  "--queue", "big", "--to", ep, "--max-record-bytes", 1024,
                                  "--control", control], dir)
    try:
        check(recv.wait(60) == 0, "recv: " + recv.err())
        check(recv.out().splitlines() == ["small 1", "small 2"], "recv printed " + recv.out())
        s = wait_until("the bridge to count the large message",
                       lambda: (lambda s: s if s["too_large"] == 1 else None)(stats(zkit, control)))
        check(s["rejected"] == 1, "STATS: %s" % s)
        wait_until("the large message in big.dlq", lambda: queue_depth(broker, "big.dlq") == 1)
        check("is over the record limit of 1024 bytes" in bridge.err(), bridge.err())
    finally:
        bridge.close()
        recv.close()
    print("bad-input: an over-limit message was rejected to the dead-letter queue, counted")

    # 1b. The same with --on-bad-message stop: exit 1, the message stays in its queue.
    ch.basic_publish(exchange="", routing_key="big2", body=b"y" * 2048)
    rc, err = run_fail(zkit, ["--from-amqp", url, "--credentials", creds, "--queue", "big2",
                              "--to", tcp(), "--max-record-bytes", 1024,
                              "--on-bad-message", "stop"], dir)
    check(rc == 1 and "is over the record limit" in err and "stays in queue 'big2'" in err,
          "stop policy: rc %d: %s" % (rc, err))
    wait_until("the message back in big2", lambda: queue_depth(broker, "big2") == 1)
    print("bad-input: with --on-bad-message stop it exits 1 and the message stays queued")

    # 2. Batch mode: a body that is not a batch is rejected and counted; a real batch goes on.
    ch.basic_publish(exchange="", routing_key="nb", body=b"not a batch")
    ch.basic_publish(exchange="", routing_key="nb", body=zkit_batch(77, 1, [b"in a batch"]))
    recv = Child("recv-nb", [zkit, "recv", "--reliable", "--endpoint", "tcp://127.0.0.1:*",
                             "--count", 1, "--timeout-ms", 60000], dir)
    ep = recv.wait_line("zkit recv: bound", stream="err")
    control = tcp()
    bridge = Child("bridge-nb", [zkit, "bridge", "--from-amqp", url, "--credentials", creds,
                                 "--queue", "nb", "--to", ep, "--mode", "batch",
                                 "--control", control], dir)
    try:
        check(recv.wait(60) == 0, "recv: " + recv.err())
        check(recv.out().splitlines() == ["in a batch"], "recv printed " + recv.out())
        s = wait_until("the bridge to count the bad body",
                       lambda: (lambda s: s if s["not_batch"] == 1 else None)(stats(zkit, control)))
        check(s["rejected"] == 1, "STATS: %s" % s)
        wait_until("the bad body in nb.dlq", lambda: queue_depth(broker, "nb.dlq") == 1)
        check("is not a zkit batch" in bridge.err(), bridge.err())
    finally:
        bridge.close()
        recv.close()
    conn.close()
    print("bad-input: a body that is not a batch was rejected to the dead-letter queue, counted")

    # 3. An unreachable URL: exit 1 after --connect-timeout-ms, naming the address.
    dead = free_ports(1)[0]
    rc, err = run_fail(zkit, ["--from-amqp", "amqp://zkit@127.0.0.1:%d/zkit" % dead,
                              "--credentials", creds, "--queue", "q", "--to", tcp(),
                              "--connect-timeout-ms", 1500], dir)
    check(rc == 1 and "cannot connect" in err and str(dead) in err, "unreachable: %d %s" % (rc, err))
    print("bad-input: an unreachable URL exits 1: " + err.strip().splitlines()[-1][:120])

    # 4. Wrong credentials: exit 1 at once, for either direction.
    wrong = credentials(dir, "zkit-wrong", "nope")
    with open(wrong, "w") as f:
        f.write("zkit:wrong\n")
    for args in (["--from-amqp", url, "--queue", "big", "--to", tcp()],
                 ["--to-amqp", url, "--listen", tcp(), "--routing-key", "k"]):
        rc, err = run_fail(zkit, args + ["--credentials", wrong], dir)
        check(rc == 1 and "login refused for user 'zkit'" in err, "wrong creds: %d %s" % (rc, err))
    print("bad-input: wrong credentials exit 1: " + err.strip().splitlines()[-1][:120])

    # 5. A queue that does not exist: exit 1 naming it.
    rc, err = run_fail(zkit, ["--from-amqp", url, "--credentials", creds, "--queue", "nosuch",
                              "--to", tcp()], dir)
    check(rc == 1 and "queue 'nosuch' does not exist" in err, "no queue: %d %s" % (rc, err))
    print("bad-input: a missing queue exits 1: " + err.strip().splitlines()[-1][:120])

    # 6. An exchange that does not exist (to-amqp): exit 1, the batch stays with the sender.
    listen = tcp()
    bridge = Child("bridge-nox", [zkit, "bridge", "--to-amqp", url, "--credentials", creds,
                                  "--listen", listen, "--exchange", "nosuch", "--routing-key",
                                  "k"], dir)
    send = Child("send-nox", [zkit, "send", "--reliable", "--endpoint", listen,
                              "--ack-timeout-ms", 3000], dir, stdin=b"one\n")
    try:
        check(bridge.wait(30) == 1 and "no exchange 'nosuch'" in bridge.err(),
              "no exchange: %s %s" % (bridge.proc.returncode, bridge.err()))
        check(send.wait(60) != 0, "zkit send claims its batch was acknowledged")
    finally:
        send.close()
        bridge.close()
    print("bad-input: a missing exchange exits 1 and nothing is acknowledged upstream")


def case_usage(zkit, dir):
    creds = credentials(dir, "zkit", "zkit")
    cases = [
        (["--to-amqp", "amqp://u:secret@127.0.0.1:1/", "--credentials", creds, "--listen", tcp(),
          "--routing-key", "k"], "holds a password"),
        (["--from-amqp", "amqp://127.0.0.1:1/", "--queue", "q", "--to", tcp()],
         "--credentials FILE is required"),
        (["--from-amqp", "amqp://127.0.0.1:1/", "--to-amqp", "amqp://127.0.0.1:1/",
          "--credentials", creds], "exactly one of"),
        (["--from-amqp", "amqp://127.0.0.1:1/", "--credentials", creds, "--to", tcp()],
         "needs --queue"),
        (["--to-amqp", "http://127.0.0.1:1/", "--credentials", creds, "--listen", tcp(),
          "--routing-key", "k"], "not an amqp:// URL"),
        (["--from-amqp", "amqp://127.0.0.1:1/", "--credentials", os.path.join(dir, "none"),
          "--queue", "q", "--to", tcp()], "cannot open credentials file"),
        (["--from-amqp", "amqp://127.0.0.1:1/", "--credentials", creds, "--queue", "q",
          "--to", tcp(), "--mode", "fast"], "--mode"),
    ]
    for args, want in cases:
        rc, err = run_fail(zkit, args, dir)
        check(rc == 2 and want in err and len(err.strip().splitlines()) == 1,
              "%s: exit %d, stderr %r" % (args, rc, err))
    print("usage: %d flag errors exit 2 with one line each" % len(cases))


def case_reconnect(zkit, broker, dir):
    """RabbitMQ restarted under both bridges: send -> to-amqp -> quorum queue -> from-amqp ->
    recv; every message arrives (duplicates only from to-amqp republishing, docs/bridge.md)."""
    count = 20000
    creds = credentials(dir, "zkit", "zkit")
    url = "amqp://zkit@127.0.0.1:%d/zkit" % broker.port()
    recv = Child("recv", [zkit, "recv", "--reliable", "--endpoint", "tcp://127.0.0.1:*"], dir)
    ep = recv.wait_line("zkit recv: bound", stream="err")
    listen, c_to, c_from = tcp(), tcp(), tcp()
    common = ["--credentials", creds, "--stats-interval", 1]
    to = Child("to", [zkit, "bridge", "--to-amqp", url, "--listen", listen, "--routing-key", "rq",
                      "--declare-queue", "rq", "--queue-type", "quorum", "--control", c_to]
               + common, dir)
    to.wait_line("listen ")
    wait_until("the bridge to declare rq", lambda: queue_depth(broker, "rq") is not None, 60)
    clean_restart(broker)
    frm = Child("from", [zkit, "bridge", "--from-amqp", url, "--queue", "rq", "--queue-type",
                         "quorum", "--to", ep, "--journal", os.path.join(dir, "journal"),
                         "--control", c_from] + common, dir)
    send = Child("send", [zkit, "send", "--reliable", "--endpoint", listen, "--count", count,
                          "--ack-timeout-ms", 120000], dir)
    try:
        wait_until("a third of the messages downstream",
                   lambda: stats(zkit, c_from)["messages_acked_downstream"] >= count // 3, 60)
        broker.kill(1)
        broker.restart(1)
        check(send.wait(180) == 0, "zkit send: " + send.err()[-2000:])
        wait_until("every message downstream and acked to RabbitMQ", lambda: (
            lambda s: s["unacked"] == 0 and s["messages_acked_amqp"] > 0)(stats(zkit, c_from))
            and queue_depth(broker, "rq") == 0, 120)
        st, sf = stats(zkit, c_to), stats(zkit, c_from)
        check(st["amqp"]["connection_losses"] >= 1 and sf["amqp"]["connection_losses"] >= 1,
              "the restart was not noticed: %s %s" % (st, sf))
        recv.signal(signal.SIGTERM)
        recv.wait(30)
        seen = {}
        for line in recv.out().splitlines():
            n = int(line.split()[0])
            seen[n] = seen.get(n, 0) + 1
        missing = [n for n in range(1, count + 1) if n not in seen]
        dups = sum(v - 1 for v in seen.values())
        check(not missing, "%d lost, e.g. %s" % (len(missing), missing[:10]))
        check(dups <= st["republished"], "%d duplicates but to-amqp republished only %d" %
              (dups, st["republished"]))
        print("reconnect: %d of %d arrived, %d duplicates (to-amqp republished %d), "
              "connection losses to %d from %d" % (len(seen), count, dups, st["republished"],
                                                  st["amqp"]["connection_losses"],
                                                  sf["amqp"]["connection_losses"]))
    finally:
        for c in (send, to, frm, recv):
            c.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--zkit", required=True)
    p.add_argument("--case", required=True,
                   choices=["article-in", "article-out", "bad-input", "usage", "reconnect"])
    a = p.parse_args()
    dir = tempdir()
    try:
        if a.case == "usage":
            case_usage(a.zkit, dir)
            return 0
        with Broker(os.path.join(dir, "rabbitmq"), timeout=90) as broker:
            {"article-in": case_article_in, "article-out": case_article_out,
             "bad-input": case_bad_input, "reconnect": case_reconnect}[a.case](a.zkit, broker, dir)
        return 0
    except (Failure, BrokerError) as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        subprocess.run(["rm", "-rf", dir])


if __name__ == "__main__":
    sys.exit(main())
