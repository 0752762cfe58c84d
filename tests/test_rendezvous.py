"""The processes of a JAX cluster meet before JAX joins them (cnn.training.distribute.rendezvous), each in its own
process on loopback: a full meeting goes on, a duplicate id, a different count or a missing id is one line."""
import socket
import subprocess
import sys
import time

import pytest

from cnn.training.distribute.strategy import free_loopback_ports
from common.errors import UsageError

MEET = ("import sys\nfrom cnn.training.distribute.rendezvous import meet\nfrom common.errors import UsageError\n"
        "try:\n    meet('127.0.0.1', int(sys.argv[1]), count=int(sys.argv[2]), index=int(sys.argv[3]), "
        "timeout=float(sys.argv[4]))\nexcept UsageError as error:\n    print(error, file=sys.stderr)\n    sys.exit(2)\n"
        "print('met')")


def process(port, count, index, timeout=20):
    return subprocess.Popen([sys.executable, "-c", MEET, str(port), str(count), str(index), str(timeout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def outcome(member):
    """(exit status, 'met' or the error's line); process 0 also logs each arrival on stderr."""
    out, err = member.communicate(timeout=60)
    return member.returncode, (out.strip() or err.strip().splitlines()[-1])


def test_every_process_goes_on_once_all_have_come_and_the_port_is_free_again():
    port = free_loopback_ports(1)[0]
    members = [process(port, 3, 2), process(port, 3, 1)]  # the others may start before process 0
    time.sleep(1)
    members.append(process(port, 3, 0))
    assert [outcome(m) for m in members] == [(0, "met")] * 3
    with socket.create_server(("", port)):  # JAX's coordinator binds it next
        pass


def test_a_second_process_with_a_taken_id_is_one_line_and_the_rest_still_meet():
    """JAX aborted in C++ in one and left the others waiting 5 minutes."""
    port = free_loopback_ports(1)[0]
    chief, first = process(port, 3, 0), process(port, 3, 1)
    time.sleep(1.5)
    second = process(port, 3, 1)
    assert outcome(second) == (2, "KERAS_DISTRIBUTION_PROCESS_ID=1 is taken by another process: give each process "
                                  "its own id in 0..2")
    assert chief.poll() is None and first.poll() is None  # still waiting for id 2
    last = process(port, 3, 2)
    assert [outcome(m) for m in (chief, first, last)] == [(0, "met")] * 3


def test_a_process_killed_while_waiting_may_come_again_with_its_id():
    port = free_loopback_ports(1)[0]
    chief, killed = process(port, 3, 0), process(port, 3, 1)
    time.sleep(1.5)
    killed.kill()
    killed.communicate()
    again, last = process(port, 3, 1), process(port, 3, 2)
    assert [outcome(m) for m in (chief, again, last)] == [(0, "met")] * 3


def test_a_process_with_another_count_is_refused():
    port = free_loopback_ports(1)[0]
    chief, other = process(port, 2, 0, timeout=4), process(port, 3, 1, timeout=4)
    assert outcome(other) == (2, "KERAS_DISTRIBUTION_NUM_PROCESSES=3 here but 2 on process 0: give every process "
                                 "the same count")
    code, line = outcome(chief)
    assert code == 2 and line.startswith("KERAS_DISTRIBUTION_PROCESS_ID=1 never came to the coordinator at 127.0.0.1:")


def test_a_missing_coordinator_is_one_line_after_the_timeout():
    port = free_loopback_ports(1)[0]
    code, line = outcome(process(port, 2, 1, timeout=2))
    assert code == 2 and line.startswith(f"the coordinator at 127.0.0.1:{port} did not answer")


def test_a_second_process_0_is_refused_before_jax_aborts():
    """Process 0 listens on the coordinator's port: one already listening there (another id 0) is one line."""
    from cnn.training.distribute.rendezvous import listener

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"10.0.0.1:{port} is taken"):
            listener(port, f"10.0.0.1:{port}")
    listener(port, "free again").close()
