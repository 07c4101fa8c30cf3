"""StopSignals: the signals a run stops on, and the SIGTERM that follows submitit's requeue on SLURM (issue 21)."""

import os
import signal
import sys

import pytest

from rl.qarl.interrupts import StopSignals

needs_usr2 = pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="no SIGUSR2 on this platform")


@pytest.fixture
def usr2_handler():
    """Install a SIGUSR2 handler (as submitit does in a job) and restore SIGUSR2 and SIGTERM afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}

    def install(handler):
        signal.signal(signal.SIGUSR2, handler)

    yield install
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@needs_usr2
def test_sigterm_of_the_requeue_is_expected_and_exits_with_one_line(usr2_handler, capsys):
    """submitit's SIGUSR2 handler runs `scontrol requeue`; SLURM stops the job with SIGTERM during or after it."""
    calls = []

    def submitit_requeue(signum, frame):  # what submitit's checkpoint_and_try_requeue does on SLURM
        calls.append(signum)
        os.kill(os.getpid(), signal.SIGTERM)  # scontrol requeue: the job gets SIGTERM, then is put back in the queue
        os.kill(os.getpid(), signal.SIGTERM)  # srun forwards it too
        sys.exit(-1)

    usr2_handler(submitit_requeue)
    try:
        with pytest.raises(SystemExit) as exited, StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert signals.received == signal.SIGUSR2
            signals.forward()
    except KeyboardInterrupt as e:  # the old behaviour: a traceback in the job's log
        pytest.fail(f"the requeue's SIGTERM raised KeyboardInterrupt: {e}")
    assert exited.value.code == -1  # submitit's own exit after requeuing
    assert calls == [signal.SIGUSR2]
    os.kill(os.getpid(), signal.SIGTERM)  # late, while the process exits: ignored (the test process survives)
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert len(lines) == 1 and "requeued" in lines[0] and "SIGTERM" in lines[0], lines


@needs_usr2
def test_a_handler_that_does_not_exit_leaves_sigterm_a_stop_signal(usr2_handler):
    """submitit's handler returns without exiting on ranks other than 0: SIGTERM is a second signal again."""
    usr2_handler(lambda signum, frame: None)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGUSR2)
        signals.forward()
        with pytest.raises(KeyboardInterrupt, match="second signal"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signals._handle)


def test_a_second_signal_while_stopping_still_stops_at_once():
    with pytest.raises(KeyboardInterrupt, match="second signal"), StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)


@needs_usr2
def test_handlers_are_restored(usr2_handler):
    def mine(signum, frame):
        pass

    usr2_handler(mine)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)}
    with StopSignals():
        assert signal.getsignal(signal.SIGUSR2) is not mine
    assert {s: signal.getsignal(s) for s in before} == before
