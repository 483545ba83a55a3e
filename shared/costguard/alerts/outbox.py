"""The sweeper's outbox: the alert book and the publisher its redrives deliver to (the claim,
publish and mark of each alert are the book's `deliver` and `redrive`)."""

from __future__ import annotations

from dataclasses import dataclass

from costguard.alerts.book import AlertBook
from costguard.alerts.publishing import Publisher


@dataclass
class Outbox:
    """What the sweeper redrives: the alert book and where its alerts go."""

    book: AlertBook
    publisher: Publisher

    def redrive(self, limit: int = 100) -> tuple[int, int]:
        return self.book.redrive(self.publisher, limit)
