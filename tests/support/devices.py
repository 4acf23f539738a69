"""What tests and benches that run zkit devices as processes share: a free loopback port, the
endpoints a device prints when it starts, and a bounded stop."""
import socket
import subprocess


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoints(proc, names):
    """The 'name endpoint' lines a device prints on stdout at start, until all of `names`."""
    found = {}
    while set(names) - set(found):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{proc.args[:2]} exited before printing {names}: "
                               f"{proc.stderr.read()[-2000:]}")
        parts = line.split()
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    return found


def stop(proc, timeout=15):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
