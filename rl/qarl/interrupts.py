"""Stop a training run cleanly on SIGINT, SIGTERM or submitit's preemption signal, whatever disposition it inherited.

A process started in the background by a non-interactive shell inherits SIGINT *ignored*, and Python then never
raises ``KeyboardInterrupt``; SIGTERM (what ``kill``, SLURM and container runtimes send) would kill it without a
checkpoint. :class:`StopSignals` installs explicit handlers for both, so a run stops the same way however it was
launched. A handler only records the signal: the training loop polls :attr:`StopSignals.requested` between env
steps, rolls back to the last completed iteration and checkpoints it (never half-trained agents under a
completed iteration's number), and the script exits with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
A second signal while stopping raises ``KeyboardInterrupt`` at once (the checkpoint being written is atomic).

Under submitit (``hydra/launcher=slurm``), SLURM sends ``SIGUSR2`` before a time-out or preemption and
submitit's handler requeues the job. When such a Python handler is installed for ``SIGUSR2``,
:class:`StopSignals` takes the signal first, lets the run checkpoint, and then calls submitit's handler
(:meth:`StopSignals.forward`), which requeues the job and exits; the requeued job resumes with ``resume=auto``.
On SLURM that handler runs ``scontrol requeue``, and SLURM stops the running job with SIGTERM while (or just after)
it does: from the hand-over on, that SIGTERM is expected and ignored, and the job exits with one line instead of
a second-signal ``KeyboardInterrupt`` traceback.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopRequested(Exception):  # control flow, not an error
    """Raised inside an iteration when a stop was requested (the trainer's state is then mid-iteration)."""


class TrainingInterrupted(Exception):  # an outcome, not an error
    """Training stopped on a signal after checkpointing its last consistent state.

    Attributes:
        signum: the signal received.
        checkpoint: the checkpoint written (``None`` if writing it failed or was itself interrupted).
    """

    def __init__(self, signum: int, checkpoint: Any = None) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The conventional exit status of a process stopped by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum)


class StopSignals:
    """Context manager recording SIGINT/SIGTERM (and a chained SIGUSR2) instead of dying mid-step.

    Outside the main thread (where ``signal.signal`` is not allowed) it does nothing.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Handler] = {}
        self._handing_over = False  # forward() runs the previous handler: a SIGTERM now comes from the requeue
        self._requeued = False  # that handler requeued the job and exits the process

    @property
    def requested(self) -> bool:
        """Whether a stop signal has arrived."""
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._handing_over and signum == signal.SIGTERM:  # scontrol requeue stops the job so: expected
            return
        if self.received is not None:
            raise KeyboardInterrupt(f"second signal ({signal.Signals(signum).name}) while stopping")
        self.received = signum

    def forward(self) -> None:
        """Call the handler that was installed before for the received signal, if it was a Python function.

        This is how submitit's ``SIGUSR2`` handler (checkpoint the callable, requeue the job, exit) runs after
        the run's own checkpoint. On SLURM, that handler's ``scontrol requeue`` makes SLURM send the job SIGTERM:
        it is ignored from the hand-over on, and when the handler exits the process (it requeued the job) one line
        says so; SIGTERM then stays ignored while the process exits.
        """
        if self.received is None or self.received in (signal.SIGINT, signal.SIGTERM):
            return
        previous = self._previous.get(self.received)
        if not callable(previous):
            return
        self._handing_over = True
        try:
            previous(self.received, None)
        except SystemExit:
            self._requeued = True
            print("requeued: this attempt exits here (the SIGTERM SLURM sends while requeuing is expected)", flush=True)
            raise
        finally:
            self._handing_over = self._requeued

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        signals = [signal.SIGINT, signal.SIGTERM]
        usr2 = getattr(signal, "SIGUSR2", None)
        if usr2 is not None and callable(signal.getsignal(usr2)):  # submitit's requeue handler
            signals.append(usr2)
        for signum in signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            if signum == signal.SIGTERM and self._requeued:  # exiting: the requeue's SIGTERM may still be on its way
                previous = signal.SIG_IGN
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
