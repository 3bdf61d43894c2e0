"""A batch of account inputs: what their handling leaves for later.

The account agent takes its inputs a batch at a time (Faust's ``take_events``) and applies them
one by one, in order. Two things wait:

- Statuses. A partition's fills and transfers of distinct accounts form a wave whose margin is
  computed in one vectorised pass (``AccountProcessor.settle``), and whose records are then
  written in input order. A wave is settled before an input of an account already in it, before
  any other input of its partition (a market update changes every account's margin), before the
  batch awaits anything (a rebalance, which can only happen at an await, must find every input
  handled so far in the table) and at the batch's end. So each input's status is the margin right
  after it, as if inputs were handled one at a time, and the changelog keeps the inputs' order,
  which the cursor relies on (a record in the changelog means every earlier input of its
  partition is there too: streams/accounts/cursor.py).
- Sends. The outputs go to the producer at the batch's end, in input order, without a round trip
  through Faust's topic machinery each. The outbox counts them as pending from the moment they
  are filed, so a later input of the same batch never prunes them (streams/accounts/outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.accounts.outbox import Encoded
from streams.accounts.outputs import Applied, InputRef
from streams.accounts.processor import AccountProcessor


@dataclass
class Wave:
    """A partition's applied inputs of distinct accounts whose statuses are still to come."""

    processor: AccountProcessor
    inputs: dict[str, Applied] = field(default_factory=dict)


@dataclass
class AccountBatch:
    """The waves, per partition, and the sends, in input order, a batch has left to do."""

    waves: dict[int, Wave] = field(default_factory=dict)
    sends: list[tuple[InputRef, list[Encoded]]] = field(default_factory=list)
    spent: dict[InputRef, float] = field(default_factory=dict)  # each waiting input's own time

    def waiting(self, partition: int, account: str) -> bool:
        """True when an input of the account waits in its partition's wave."""
        wave = self.waves.get(partition)
        return wave is not None and account in wave.inputs

    def join(self, proc: AccountProcessor, applied: Applied) -> None:
        """An applied input waits for its partition's wave to be settled."""
        wave = self.waves.get(proc.partition)
        if wave is None:
            wave = self.waves[proc.partition] = Wave(proc)
        wave.inputs[applied.record.account] = applied

    def take_wave(self, partition: int) -> Wave | None:
        """A partition's wave, taken out of the batch (None when nothing waits)."""
        return self.waves.pop(partition, None)

    def send(self, ref: InputRef, outputs: list[Encoded]) -> None:
        """An input's encoded outputs to send at the end."""
        if outputs:
            self.sends.append((ref, outputs))
