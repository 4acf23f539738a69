#!/usr/bin/python3
"""Starts Debian's rabbitmq-server (3.10) for a test or a benchmark, as one node or a 3-node cluster
on this machine, and stops it again by the pids it started.

Every node has its own node name (zkit-test-<pid>-<i>@localhost), its own data, log and config
files under one directory, its own AMQP port and distribution port on 127.0.0.1, and all nodes of
one harness share an epmd started here on a free port (ERL_EPMD_PORT), so that nothing is shared
with the machine's own RabbitMQ or with other tests. The Erlang cookie lives in a private HOME.
Plugins are off (no management, no prometheus). Users at first boot (from a definitions file):
guest/guest on "/" (what the article's pika programs use) and zkit/zkit on vhost "zkit".

Command line (for ctest and bench scripts):
  rabbitmq.py run [--nodes N] [--dir D] [--timeout S] -- CMD ARGS...
      start, run CMD with the environment below, stop; exits with CMD's code, or 1 with a message
      saying why when the broker could not start.
  rabbitmq.py start --dir D [--nodes N] [--timeout S]
      start and return, printing the environment as `export NAME=value` lines (eval them);
      `rabbitmq.py stop --dir D` stops it (put it in a trap). State: D/harness.json.
  rabbitmq.py stop --dir D [--keep]     stop what start started, by pid; remove D unless --keep
  rabbitmq.py ctl --dir D [--node I] -- ARGS...   rabbitmqctl ARGS against node I (1-based)
  rabbitmq.py kill --dir D --node I     SIGKILL node I's Erlang VM (failover tests)
  rabbitmq.py selftest [--nodes N]      start, check that every node answers AMQP, stop (a ctest)

Environment given to CMD (and printed by start):
  ZKIT_AMQP_URL         amqp://zkit:zkit@127.0.0.1:PORT/zkit of node 1
  ZKIT_AMQP_URLS        the same for every node, space separated
  ZKIT_AMQP_HOST, ZKIT_AMQP_PORT (node 1), ZKIT_AMQP_PORTS (every node, space separated)
  ZKIT_AMQP_USER, ZKIT_AMQP_PASSWORD, ZKIT_AMQP_VHOST   zkit, zkit, zkit
  ZKIT_RABBITMQ_DIR     D (for `rabbitmq.py ctl/kill --dir`), ZKIT_RABBITMQ_HARNESS this script
  ZKIT_RABBITMQ_NODES   node names, ZKIT_RABBITMQ_PIDS the Erlang VM pids, space separated

From Python: `with Broker(directory, nodes=3) as broker: broker.url(1); broker.kill(2);
broker.restart(2)`.
Bounded in time: start fails after --timeout seconds (default 120) with the log's tail.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Debian's scripts (/usr/sbin's wrappers `su` to user rabbitmq); ZKIT_RABBITMQ_BIN overrides.
RABBIT_BIN = os.environ.get("ZKIT_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin")
SERVER = os.path.join(RABBIT_BIN, "rabbitmq-server")
CTL = os.path.join(RABBIT_BIN, "rabbitmqctl")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
USER, PASSWORD, VHOST = "zkit", "zkit", "zkit"


class BrokerError(RuntimeError):
    """The broker could not be started or driven; the message says why."""


def free_ports(count):
    """count distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def password_hash(password):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no %s)\n" % path


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); it is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Broker:
    """One RabbitMQ node or a cluster of them, started under directory (created if missing)."""

    def __init__(self, directory=None, nodes=1, timeout=120.0, memory="1GB"):
        if nodes < 1 or nodes > 9:
            raise BrokerError("--nodes must be 1..9, not %d" % nodes)
        self.owns_dir = directory is None  # then start() makes a temp dir and stop() removes it
        self.dir = os.path.abspath(directory) if directory else None
        self.count = nodes
        self.timeout = timeout
        self.memory = memory
        self.nodes = []  # dicts: name, port, dist, dir, pidfile, log, server_pid, vm_pid
        self.epmd_pid = None
        self.epmd_port = None
        self.ctl_ports = None
        self.home = os.path.join(self.dir, "home") if self.dir else None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for tool in (SERVER, CTL, EPMD):
            if not os.access(tool, os.X_OK):
                raise BrokerError("%s is missing: install rabbitmq-server (scripts/install-deps.sh)"
                                  % tool)
        deadline = time.monotonic() + self.timeout
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="zkit-rabbitmq.")
            self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home, exist_ok=True)
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(16))
        os.chmod(cookie, 0o400)
        ports = free_ports(3 + 2 * self.count)
        self.epmd_port, self.ctl_ports = ports[0], (ports[1], ports[2])
        self._start_epmd(deadline)
        try:
            for i in range(self.count):
                self._start_node(i, ports[3 + 2 * i], ports[4 + 2 * i])
            for node in self.nodes:
                self._await(node, deadline)
            for node in self.nodes[1:]:
                self._join(node, deadline)
        except BaseException:
            self.stop(keep=not self.owns_dir)  # the message carries the log's tail
            raise
        self._save()

    def _start_epmd(self, deadline):
        if port_in_use(self.epmd_port):
            raise BrokerError("epmd port %d is in use" % self.epmd_port)
        log = open(os.path.join(self.dir, "epmd.log"), "w")
        proc = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=self._env(None))
        self.epmd_pid = proc.pid
        self._epmd_proc = proc
        # epmd has no readiness signal: its port accepting a connection is the event.
        while not self._connects(self.epmd_port):
            if proc.poll() is not None:
                raise BrokerError("epmd on port %d exited %s: %s" % (
                    self.epmd_port, proc.returncode, tail(log.name)))
            if time.monotonic() > deadline:
                raise BrokerError("epmd did not listen on port %d in time" % self.epmd_port)
            time.sleep(0.02)

    @staticmethod
    def _connects(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def _start_node(self, i, port, dist):
        name = "zkit-test-%d-%d@localhost" % (os.getpid(), i + 1)
        base = os.path.join(self.dir, "node%d" % (i + 1))
        for sub in ("mnesia", "log", "etc"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        for p in (port, dist):
            if port_in_use(p):
                raise BrokerError("port %d for %s is in use" % (p, name))
        etc = os.path.join(base, "etc")
        with open(os.path.join(etc, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % port)
            f.write("load_definitions = %s\n" % os.path.join(etc, "definitions.json"))
            f.write("vm_memory_high_watermark.absolute = %s\n" % self.memory)
            f.write("disk_free_limit.absolute = 50MB\n")
            f.write("log.file.level = info\nlog.console = false\n")
        with open(os.path.join(etc, "definitions.json"), "w") as f:
            json.dump(self._definitions(), f)
        with open(os.path.join(etc, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(etc, "advanced.config"), "w") as f:
            f.write("[].\n")
        open(os.path.join(etc, "rabbitmq-env.conf"), "w").close()
        node = {"name": name, "port": port, "dist": dist, "dir": base,
                "pidfile": os.path.join(base, "vm.pid"),
                "log": os.path.join(base, "log", "rabbit.log"), "server_pid": None, "vm_pid": None}
        self._spawn(node)
        self.nodes.append(node)

    def _spawn(self, node):
        out = open(os.path.join(node["dir"], "log", "server.out"), "a")
        # Not in a new session: if the caller is killed outright (ctest's timeout kills the process
        # tree), the nodes go with it.
        proc = subprocess.Popen([SERVER], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=self._env(node), cwd=node["dir"])
        node["server_pid"] = proc.pid
        node["proc"] = proc

    def _definitions(self):
        def user(name, password, tags):
            return {"name": name, "password_hash": password_hash(password),
                    "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags}
        perm = ".*"
        return {"users": [user("guest", "guest", ["administrator"]),
                          user(USER, PASSWORD, ["administrator"])],
                "vhosts": [{"name": "/"}, {"name": VHOST}],
                "permissions": [{"user": u, "vhost": v, "configure": perm, "write": perm,
                                 "read": perm}
                                for u in ("guest", USER) for v in ("/", VHOST)]}

    def _env(self, node):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_", "ERLANG_"))}
        env["HOME"] = self.home
        env["ERL_EPMD_PORT"] = str(self.epmd_port)
        env["ERL_EPMD_ADDRESS"] = "127.0.0.1"
        env["RABBITMQ_CTL_DIST_PORT_MIN"] = str(min(self.ctl_ports))
        env["RABBITMQ_CTL_DIST_PORT_MAX"] = str(max(self.ctl_ports))
        env["RABBITMQ_CTL_ERL_ARGS"] = "-start_epmd false"
        if node is None:
            return env
        etc = os.path.join(node["dir"], "etc")
        env.update({
            "RABBITMQ_NODENAME": node["name"],
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node["port"]),
            "RABBITMQ_DIST_PORT": str(node["dist"]),
            "RABBITMQ_MNESIA_BASE": os.path.join(node["dir"], "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(node["dir"], "log"),
            "RABBITMQ_LOGS": node["log"],
            "RABBITMQ_PID_FILE": node["pidfile"],
            "RABBITMQ_CONFIG_FILE": os.path.join(etc, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(etc, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(etc, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(etc, "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(node["dir"], "plugins-expand"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def _ctl_env(self, node):
        env = self._env(None)
        env["RABBITMQ_NODENAME"] = node["name"]
        return env

    def ctl(self, index, *args, timeout=60, check=True):
        """rabbitmqctl ARGS against node index (1-based); returns its stdout."""
        node = self.nodes[index - 1]
        r = subprocess.run([CTL, "-n", node["name"]] + [str(a) for a in args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=self._ctl_env(node), timeout=timeout)
        if check and r.returncode != 0:
            raise BrokerError("rabbitmqctl %s on %s exited %d: %s%s" % (
                " ".join(map(str, args)), node["name"], r.returncode, r.stdout, r.stderr))
        return r.stdout

    def _await(self, node, deadline):
        # `rabbitmqctl wait PIDFILE` blocks until the pid file appears and the node has booted.
        left = deadline - time.monotonic()
        if left <= 1:
            raise self._timeout(node)
        try:
            r = subprocess.run([CTL, "-n", node["name"], "wait", "--timeout", str(int(left)),
                                node["pidfile"]], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, env=self._ctl_env(node), timeout=left)
        except subprocess.TimeoutExpired:
            raise self._timeout(node)
        if node["proc"].poll() is not None:
            raise BrokerError("rabbitmq-server %s exited %s while starting; its log:\n%s%s" % (
                node["name"], node["proc"].returncode, tail(node["log"]),
                tail(os.path.join(node["dir"], "log", "server.out"))))
        if r.returncode != 0:
            if time.monotonic() >= deadline - 1:
                raise self._timeout(node)
            raise BrokerError("rabbitmq-server %s did not start (rabbitmqctl wait exited %d: %s%s)"
                              "; its log:\n%s" % (node["name"], r.returncode, r.stdout.strip(),
                                                  r.stderr.strip(), tail(node["log"])))
        with open(node["pidfile"]) as f:
            node["vm_pid"] = int(f.read().strip())

    def _timeout(self, node):
        return BrokerError("rabbitmq-server %s did not start within %gs; its log:\n%s%s" % (
            node["name"], self.timeout, tail(node["log"]),
            tail(os.path.join(node["dir"], "log", "server.out"))))

    def _join(self, node, deadline):
        index = self.nodes.index(node) + 1
        left = max(5, deadline - time.monotonic())
        self.ctl(index, "stop_app", timeout=left)
        self.ctl(index, "join_cluster", self.nodes[0]["name"], timeout=left)
        self.ctl(index, "start_app", timeout=left)

    def stop(self, keep=False):
        """Stops every process start() started, by pid: SIGTERM, then SIGKILL after 30 s."""
        pids = []
        for node in self.nodes:
            pids += [p for p in (node.get("vm_pid"), node.get("server_pid")) if p]
        for pid in pids:
            self._signal(pid, signal.SIGTERM)
        self._reap(pids, 30)
        if self.epmd_pid:
            self._signal(self.epmd_pid, signal.SIGTERM)
            self._reap([self.epmd_pid], 5)
        if not keep and self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _ours(self, pid):
        """pid is still a process this harness started (all of them run with HOME=self.home), not
        a reused pid."""
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                return ("HOME=%s" % self.home).encode() in f.read().split(b"\0")
        except OSError:
            return False

    def _signal(self, pid, sig):
        if not self._ours(pid):
            return
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self, pids, seconds):
        procs = {n["server_pid"]: n.get("proc") for n in self.nodes}
        if self.epmd_pid:
            procs[self.epmd_pid] = getattr(self, "_epmd_proc", None)
        deadline = time.monotonic() + seconds
        for pid in pids:
            proc = procs.get(pid)
            while True:
                if proc is not None:
                    try:
                        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                        break
                    except subprocess.TimeoutExpired:
                        pass
                elif not alive(pid):
                    break
                if time.monotonic() >= deadline:
                    self._signal(pid, signal.SIGKILL)
                    if proc is not None:
                        proc.wait(timeout=10)
                    break
                if proc is None:
                    time.sleep(0.05)  # not our child (stop from another process): poll its pid

    def kill(self, index):
        """SIGKILL node index's Erlang VM (no shutdown at all: a machine that died) and reap it."""
        node = self.nodes[index - 1]
        self._signal(node["vm_pid"], signal.SIGKILL)
        self._reap([node["server_pid"]], 30)

    def restart(self, index, timeout=None):
        """Starts node index again on its data, ports and name (after kill() or a stop), and waits
        until it runs; a cluster member rejoins its cluster by itself."""
        node = self.nodes[index - 1]
        if node.get("proc") is not None and node["proc"].poll() is None:
            raise BrokerError("%s is still running" % node["name"])
        try:
            os.unlink(node["pidfile"])
        except FileNotFoundError:
            pass
        self._spawn(node)
        self._await(node, time.monotonic() + (timeout or self.timeout))

    # -- what a test needs -----------------------------------------------------------------------
    def url(self, index=1, user=USER, password=PASSWORD, vhost=VHOST):
        return "amqp://%s:%s@127.0.0.1:%d/%s" % (user, password, self.nodes[index - 1]["port"],
                                                 vhost.replace("/", "%2F"))

    def port(self, index=1):
        return self.nodes[index - 1]["port"]

    def pid(self, index=1):
        return self.nodes[index - 1]["vm_pid"]

    def environment(self):
        return {
            "ZKIT_AMQP_URL": self.url(1),
            "ZKIT_AMQP_URLS": " ".join(self.url(i + 1) for i in range(len(self.nodes))),
            "ZKIT_AMQP_HOST": "127.0.0.1",
            "ZKIT_AMQP_PORT": str(self.port(1)),
            "ZKIT_AMQP_PORTS": " ".join(str(n["port"]) for n in self.nodes),
            "ZKIT_AMQP_USER": USER, "ZKIT_AMQP_PASSWORD": PASSWORD, "ZKIT_AMQP_VHOST": VHOST,
            "ZKIT_RABBITMQ_DIR": self.dir,
            "ZKIT_RABBITMQ_HARNESS": os.path.abspath(__file__),
            "ZKIT_RABBITMQ_NODES": " ".join(n["name"] for n in self.nodes),
            "ZKIT_RABBITMQ_PIDS": " ".join(str(n["vm_pid"]) for n in self.nodes),
        }

    # -- state for start/stop from separate processes --------------------------------------------
    def _save(self):
        state = {"dir": self.dir, "epmd_pid": self.epmd_pid, "epmd_port": self.epmd_port,
                 "ctl_ports": self.ctl_ports, "memory": self.memory,
                 "nodes": [{k: v for k, v in n.items() if k != "proc"} for n in self.nodes]}
        with open(os.path.join(self.dir, "harness.json"), "w") as f:
            json.dump(state, f)

    @classmethod
    def load(cls, directory):
        path = os.path.join(directory, "harness.json")
        try:
            with open(path) as f:
                state = json.load(f)
        except OSError as e:
            raise BrokerError("%s: no broker started there (%s)" % (directory, e.strerror))
        b = cls(state["dir"], nodes=len(state["nodes"]), memory=state["memory"])
        b.epmd_pid, b.epmd_port = state["epmd_pid"], state["epmd_port"]
        b.ctl_ports, b.nodes = state["ctl_ports"], state["nodes"]
        return b


def check_amqp(broker):
    """Every node accepts an AMQP connection and a declare/publish/get round trip (pika)."""
    import pika
    for i in range(1, len(broker.nodes) + 1):
        params = pika.URLParameters(broker.url(i))
        params.socket_timeout = 10
        conn = pika.BlockingConnection(params)
        try:
            ch = conn.channel()
            ch.queue_declare(queue="zkit-selftest-%d" % i, durable=True,
                             arguments={"x-queue-type": "quorum"})
            body = ("hello from node %d" % i).encode()
            ch.basic_publish(exchange="", routing_key="zkit-selftest-%d" % i, body=body)
            got = None
            for _ in range(100):  # bounded: a quorum queue answers within a few round trips
                method, _, got = ch.basic_get(queue="zkit-selftest-%d" % i, auto_ack=True)
                if method is not None:
                    break
                conn.sleep(0.05)
            if got != body:
                raise BrokerError("node %d: published %r, got back %r" % (i, body, got))
        finally:
            conn.close()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    for name in ("run", "start", "selftest"):
        s = sub.add_parser(name)
        s.add_argument("--nodes", type=int, default=1)
        s.add_argument("--dir")
        s.add_argument("--timeout", type=float, default=120)
        s.add_argument("--memory", default="1GB", help="vm_memory_high_watermark.absolute")
        if name == "run":
            s.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("stop")
    s.add_argument("--dir", required=True)
    s.add_argument("--keep", action="store_true")
    s = sub.add_parser("ctl")
    s.add_argument("--dir", required=True)
    s.add_argument("--node", type=int, default=1)
    s.add_argument("args", nargs=argparse.REMAINDER)
    s = sub.add_parser("kill")
    s.add_argument("--dir", required=True)
    s.add_argument("--node", type=int, required=True)
    a = p.parse_args(argv)

    try:
        if a.action in ("stop", "ctl", "kill"):
            b = Broker.load(a.dir)
            if a.action == "stop":
                b.stop(keep=a.keep)
            elif a.action == "kill":
                if not 1 <= a.node <= len(b.nodes):
                    p.error("--node must be 1..%d" % len(b.nodes))
                b.kill(a.node)
            else:
                args = a.args[1:] if a.args[:1] == ["--"] else a.args
                sys.stdout.write(b.ctl(a.node, *args))
            return 0
        if a.action == "run":
            command = a.command[1:] if a.command[:1] == ["--"] else a.command
            if not command:
                p.error("run needs a command after --")
        b = Broker(a.dir, nodes=a.nodes, timeout=a.timeout, memory=a.memory)
        t0 = time.monotonic()
        b.start()
        started = time.monotonic() - t0
        env = b.environment()
        if a.action == "start":
            for k, v in env.items():
                print("export %s=%s" % (k, shlex.quote(v)))
            return 0
        print("rabbitmq.py: %d node(s) up in %.1fs: %s" % (
            len(b.nodes), started, env["ZKIT_AMQP_URLS"]), file=sys.stderr, flush=True)
        try:
            if a.action == "selftest":
                check_amqp(b)
                if len(b.nodes) > 1:
                    status = b.ctl(1, "cluster_status", "--formatter", "json")
                    running = json.loads(status).get("running_nodes", [])
                    if sorted(running) != sorted(n["name"] for n in b.nodes):
                        raise BrokerError("cluster_status lists running nodes %s, expected %s"
                                          % (running, [n["name"] for n in b.nodes]))
                print("rabbitmq.py selftest: %d node(s) answered AMQP%s" % (
                    len(b.nodes), ", one cluster" if len(b.nodes) > 1 else ""), flush=True)
                return 0
            # Forward SIGTERM/SIGINT to the command so that stop() below still runs.
            child = subprocess.Popen(command, env={**os.environ, **env})
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda s, f: child.send_signal(s))
            return child.wait()
        finally:
            b.stop()
    except BrokerError as e:
        print("rabbitmq.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
