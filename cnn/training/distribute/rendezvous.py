"""Before JAX joins a cluster, its processes meet at the coordinator's address: process 0 listens there, every other
process sends its id and the process count, and process 0 answers all of them once each id 0..N-1 has come. A second
process with an id already present, a different count, or an id that never comes is then one line (JAX itself aborts
in C++ on a duplicate id and leaves the others waiting 5 minutes), and process 0 frees the port for JAX's
coordinator. Plain sockets: nothing beyond the meeting is sent."""
import contextlib
import json
import socket
import time

from cnn.training import log
from common.errors import UsageError

# Keras's environment variables that name a JAX cluster: the coordinator's host:port first, the process count, this
# process's id.
ENVIRONMENT = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")
ADDRESSES, COUNT, ID = ENVIRONMENT
JOIN_TIMEOUT = 300  # seconds a process waits for the others, as JAX's own initialization_timeout


def meet(host, port, *, count, index, timeout=JOIN_TIMEOUT):
    """Return once all `count` processes have met at host:port; a one-line UsageError otherwise."""
    deadline = time.monotonic() + timeout
    if index == 0:
        chair(port, count=count, where=f"{host}:{port}", deadline=deadline)
    else:
        join(host, port, count=count, index=index, deadline=deadline)


def listener(port, where):
    """Process 0's socket on every address at `port`, as JAX's coordinator binds; taken is one line."""
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        return socket.create_server(("", port))
    except OSError as error:
        raise UsageError(f"{ADDRESSES}: {where} is taken ({error.strerror}): another process with "
                         f"{ID}=0 may run the coordinator already; give each process its own id, or another "
                         f"port") from None


def chair(port, *, count, where, deadline):
    """Process 0: admit one process per id until all have come (again for any that left while waiting), then tell
    each to go on."""
    members = {}
    with listener(port, where) as server:
        try:
            while len(members) < count - 1 or drop_gone(members):
                admit(server, members, count=count, deadline=deadline, where=where)
            for member in members.values():
                with contextlib.suppress(OSError):
                    send(member, {"go": True})
            for member in members.values():  # they close first, so the port is free at once for JAX
                with contextlib.suppress(UsageError):
                    receive(member, time.monotonic() + 5, eof_ok=True)
        finally:
            for member in members.values():
                member.close()


def admit(server, members, *, count, deadline, where):
    """Accept one process: keep it when its id is new (or its predecessor with that id has gone), else refuse it."""
    missing = sorted(set(range(1, count)) - set(members))
    server.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        member, peer = server.accept()
    except TimeoutError:
        raise UsageError(f"{ID}={', '.join(map(str, missing))} never came to the coordinator at {where}: start "
                         f"every process (ids 0..{count - 1}) within {JOIN_TIMEOUT // 60} minutes") from None
    try:
        hello = receive(member, deadline)
    except UsageError:
        member.close()
        return
    problem = refusal(hello, members, count)
    if problem:
        send(member, {"error": problem})
        member.close()
        return
    members[hello["id"]] = member
    log(f"process {hello['id']} joined from {peer[0].removeprefix('::ffff:')} ({len(members) + 1} of {count})")


def refusal(hello, members, count):
    """Why a process may not join (None when it may)."""
    if not isinstance(hello, dict) or not isinstance(hello.get("id"), int) or not 0 < hello["id"] < count:
        return f"{ID} must be in 1..{count - 1} for a process other than the coordinator's"
    if hello.get("count") != count:
        return (f"{COUNT}={hello.get('count')} here but {count} on process 0: give every "
                f"process the same count")
    if hello.get("id") in members and not gone(members[hello["id"]]):
        return f"{ID}={hello['id']} is taken by another process: give each process its own id in 0..{count - 1}"
    return None


def drop_gone(members):
    """Forget the waiting processes that have closed their end; whether there were any."""
    left = [index for index, member in members.items() if gone(member)]
    for index in left:
        members.pop(index).close()
        log(f"process {index} left before every process came; waiting for it again")
    return bool(left)


def gone(member):
    """Whether a waiting process has closed its end (killed and restarted, say)."""
    member.setblocking(False)
    try:
        return member.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        member.setblocking(True)


def join(host, port, *, count, index, deadline):
    """Any other process: reach process 0 (which may start later), say who it is, wait for everyone."""
    with reach(host, port, deadline) as chief:
        send(chief, {"id": index, "count": count})
        reply = receive(chief, deadline, eof_ok=True)
    if reply is None:
        raise UsageError(f"the coordinator at {host}:{port} gave up before every process came (see process 0's "
                         f"message)")
    if "error" in reply:
        raise UsageError(reply["error"])


def reach(host, port, deadline):
    """A connection to process 0, retried until the deadline."""
    while True:
        try:
            return socket.create_connection((host, port), timeout=max(min(deadline - time.monotonic(), 5), 0.01))
        except OSError as error:
            if time.monotonic() >= deadline:
                raise UsageError(f"the coordinator at {host}:{port} did not answer ({error.strerror or error}): start "
                                 f"process 0 there, or fix {ADDRESSES}") from None
            time.sleep(0.5)


def send(connection, message):
    connection.sendall(json.dumps(message).encode() + b"\n")


def receive(connection, deadline, *, eof_ok=False):
    """One JSON line from `connection` before the deadline (None at a closed end when `eof_ok`)."""
    data = b""
    while not data.endswith(b"\n"):
        connection.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = connection.recv(4096)
        except OSError as error:  # a timeout is one too
            raise UsageError(f"the meeting of the processes timed out or broke ({error})") from None
        if not chunk:
            if eof_ok:
                return None
            raise UsageError("a process left the meeting before saying who it is")
        data += chunk
    try:
        return json.loads(data)
    except ValueError:
        raise UsageError("something other than a train-cnn process spoke at the coordinator's port") from None
