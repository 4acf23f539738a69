#!/usr/bin/python3
"""pika publishing the article's way (section 4.1 of ../shared/seed/): a BlockingConnection, the
queue declared as the article declares it (`queue_declare(queue='hello')`: classic, not durable),
one basic_publish per message on the default exchange, transient, no publisher confirms; without
the article's print per message (which would measure the terminal). With --confirm, the safe
variant of the same loop: a durable quorum queue, persistent messages, confirm_delivery (each
publish waits for its confirm, as pika's BlockingChannel does).

  pika_bench.py --url URL --count N --size B [--queue Q] [--confirm]

Prints one JSON line; the time runs from the first publish until RabbitMQ holds all N (a passive
declare reports the queue's message count), and the queue is deleted afterwards.
"""
import argparse
import json
import sys
import time

import pika


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--queue", default="hello")
    p.add_argument("--confirm", action="store_true")
    a = p.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(a.url))
    channel = connection.channel()
    if a.confirm:
        channel.queue_declare(queue=a.queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
    else:
        channel.queue_declare(queue=a.queue)
        props = None
    filler = "." * a.size
    t0 = time.perf_counter()
    for i in range(a.count):
        number = str(i + 1)
        message = (number + filler)[:max(a.size, len(number))]
        channel.basic_publish(exchange="", routing_key=a.queue, body=message, properties=props)
    # Without confirms a publish returns once written to the socket: count what arrived.
    for _ in range(10000):  # bounded: 10000 round trips
        held = channel.queue_declare(queue=a.queue, passive=True).method.message_count
        if held >= a.count:
            break
    else:
        print("pika_bench: the queue holds %d of %d messages" % (held, a.count), file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    channel.queue_delete(queue=a.queue)
    connection.close()
    print(json.dumps({"side": "pika-confirm" if a.confirm else "pika-article", "count": a.count,
                      "size": a.size, "seconds": round(seconds, 6),
                      "msg_per_s": round(a.count / seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
