"""Escrow slices: one hot quota's allowance split over N items whose grants sum to its limit.

A quota with `slices: N` keeps its figures of a period on N counter items instead of one. Slice 0
is the quota's ordinary counter (`TENANT#t / MONTH#2026-11`), slice i > 0 the same sort key under
`TENANT#t#S07`: its own partition, so N slices take N times the writes. Each slice has the
ordinary field group (`q_r_limit` is the slice's *grant*, `q_r_avail`, `q_r_held`, `q_r_spent`,
`avail = grant − spent − held`) and is hard-limited on its own (`avail >= amount`).

Conservation: the grants of a quota's slices sum to its limit. Allowance only ever moves
between slices by relative `ADD`s in one transaction (a *move*: `grant −x, avail −x` on one
slice, `grant +x, avail +x` on another), so concurrent spend cannot make a move create or lose
allowance; the conditions only keep every hard slice at `avail >= 0`.

A slice of the period that no write has touched yet has no fields: its grant is *virtual*,
`shares(limit, N)[i]` (the verified policy's limit and slice count), and the first write creates
it with `if_not_exists(…, :share)`. Every transaction that may create a slice carries the policy
check (as every reserve does), so a virtual grant is never created from a stale layout. A
re-grant (new limit or new slice count) materializes every slice of the period it touches, so
that no virtual grant outlives the layout it was computed from.

See docs/decisions.md D74–D79 and docs/data-model.md "Hot keys".
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from costguard.errors import LedgerCorrupted
from costguard.store.counters import CounterItem, lease_prefix
from costguard.store.keys import slice_pk
from costguard.store.writes import ItemWrite

Key = tuple[str, str]
MAX_SLICES = 64
QUANTUM = Decimal("0.000001")
"""Shares are cut to a millionth of a dollar; slice 0 takes the remainder, so they sum exactly."""
ZERO = Decimal(0)


def slice_key(base: Key, index: int) -> Key:
    """The item of slice `index` of the counter `base` (slice 0 is the counter itself)."""
    if not 0 <= index < MAX_SLICES:
        raise ValueError(f"slice {index} out of range")
    return slice_pk(base[0], index), base[1]


def shares(total: Decimal, n: int) -> tuple[Decimal, ...]:
    """`total` cut into `n` parts that sum to it exactly (slice 0 takes the remainder)."""
    if not 1 <= n <= MAX_SLICES:
        raise ValueError(f"slices must be between 1 and {MAX_SLICES}")
    part = (total / n).quantize(QUANTUM, rounding=ROUND_DOWN)
    return (total - part * (n - 1), *([part] * (n - 1)))


def virtual_grant(limit: Decimal, n: int, index: int) -> Decimal:
    """The grant of a slice whose fields do not exist yet in the period."""
    return shares(limit, n)[index] if index < n else ZERO


@dataclass(frozen=True)
class Layout:
    """What the verified policy says about a quota's slices."""

    limit: Decimal
    slices: int = 1
    """N: reserves pick among slices 0..N−1."""
    span: int = 1
    """Every slice index that may hold anything: the largest N the quota has had."""
    solo: bool = False
    """The current period's limit was cut below what is spent and held: the deficit sits on
    slice 0 and reserves take only slice 0 until the period ends or a re-grant has room."""

    @property
    def indices(self) -> range:
        return range(max(self.slices, self.span))

    @property
    def pickable(self) -> int:
        """How many slices a reserve picks from."""
        return 1 if self.solo else self.slices


@dataclass(frozen=True)
class SliceState:
    """One slice's figures (virtual when `stored` is False)."""

    index: int
    grant: Decimal
    avail: Decimal
    held: Decimal = ZERO
    spent: Decimal = ZERO
    stored: bool = True


def state_of(item: Mapping[str, Any] | None, prefix: str, index: int, layout: Layout) -> SliceState:
    """A slice's figures from its item (None or no field: the virtual grant); a malformed
    figure is LedgerCorrupted (`costguard.store.counters`)."""
    f = CounterItem(item).fields(prefix)
    if f.limit is None:
        grant = virtual_grant(layout.limit, layout.slices, index)
        return SliceState(index, grant, grant - f.held - f.spent, f.held, f.spent, stored=False)
    if f.avail is None:
        raise LedgerCorrupted(f"a slice's {prefix}limit without its {prefix}avail")
    return SliceState(index, f.limit, f.avail, f.held, f.spent)


def states_of(
    items: Mapping[Key, Mapping[str, Any]], base: Key, prefix: str, layout: Layout
) -> list[SliceState]:
    return [state_of(items.get(slice_key(base, i)), prefix, i, layout) for i in layout.indices]


@dataclass(frozen=True)
class Whole:
    """A sliced quota read as one: what figures, the 429 body and alerts show."""

    limit: Decimal
    spent: Decimal
    held: Decimal
    avail: Decimal


def whole(states: Iterable[SliceState]) -> Whole:
    states = list(states)
    return Whole(
        limit=sum((s.grant for s in states), ZERO),
        spent=sum((s.spent for s in states), ZERO),
        held=sum((s.held for s in states), ZERO),
        avail=sum((s.avail for s in states), ZERO),
    )


def pick(n: int, rng: random.Random | None = None) -> int:
    """The slice a reserve takes: uniformly at random, so N slices share the load evenly."""
    return (rng or _rng).randrange(n)


_rng = random.Random()  # noqa: S311 - load spreading, not security


def slice_threshold(threshold: Decimal, amount: Decimal, n: int) -> Decimal:
    """A slice's share of a quota's denial threshold: a soft quota's grace (the difference
    `amount − threshold`) is split like the limit, so the slices' overdrafts sum to the
    quota's; a hard quota's threshold is the amount itself."""
    return amount - (amount - threshold) / n


def borrow_moves(
    states: Sequence[SliceState], target: int, threshold: Decimal, whole_threshold: Decimal
) -> dict[int, Decimal] | None:
    """Moves (donor → amount) that bring slice `target` to `threshold`, from a snapshot.

    None when the quota as a whole cannot cover the request (Σ avail < `whole_threshold`):
    the only refusal. The richest donor gives at least half of what it has (so a slice that
    ran dry does not borrow again on its next reserve), others only what is still missing.
    """
    if sum((s.avail for s in states), ZERO) < whole_threshold:
        return None
    by_index = {s.index: s for s in states}
    need = threshold - by_index[target].avail
    if need <= 0:
        return {}
    donors = sorted(
        (s for s in states if s.index != target and s.avail > 0), key=lambda s: (-s.avail, s.index)
    )
    moves: dict[int, Decimal] = {}
    for rank, donor in enumerate(donors):
        if need <= 0:
            break
        half = (donor.avail / 2).quantize(QUANTUM, rounding=ROUND_DOWN)
        take = min(donor.avail, max(need, half) if rank == 0 else need)
        moves[donor.index] = take
        need -= take
    if need > 0:
        # Σ avail covers it but the positive slices do not: some slice is overdrawn (an
        # overrun). The quota as a whole is what decides; refuse rather than lend from debt.
        return None
    return moves


def regrant_deltas(
    states: Sequence[SliceState], new_limit: Decimal, new_slices: int
) -> dict[int, Decimal]:
    """Per slice, the amount its grant and avail move by so that the grants sum to
    `new_limit` and the unused allowance is spread evenly over slices 0..new_slices−1
    (retired slices keep only what is spent or held on them).

    A limit cut below what is spent and held leaves slice 0 overdrawn (as an unsliced
    counter is) and every other slice at 0; the caller makes the layout `solo` for the rest
    of the period, so allowance the other slices' holds return there can only be reached by a
    borrow, which checks the whole: nothing passes until the whole is back under the limit.
    """
    grant = sum((s.grant for s in states), ZERO)
    avail = sum((s.avail for s in states), ZERO)
    spare = avail + new_limit - grant
    indices = sorted({*(s.index for s in states), *range(new_slices)})
    if spare >= 0:
        cut = shares(spare, new_slices)
        target = {i: cut[i] if i < new_slices else ZERO for i in indices}
    else:
        target = {i: spare if i == 0 else ZERO for i in indices}
    current = {s.index: s.avail for s in states}
    return {i: target[i] - current.get(i, ZERO) for i in indices}


# ---------------------------------------------------------------------- transaction builders
def hold(
    w: ItemWrite,
    prefix: str,
    default_grant: Decimal,
    amount: Decimal,
    target: str,
    threshold: Decimal | None,
    borrowed: Decimal = ZERO,
) -> None:
    """Hold (`target='held'`) or spend (`'spent'`) `amount` on a slice, after the `borrowed`
    allowance moved onto it in the same transaction; the slice's fields are created with its
    verified virtual grant on the period's first write."""
    avail, limit = w.name(prefix + "avail"), w.name(prefix + "limit")
    g = w.value(default_grant)
    w.sets.append(f"{avail} = if_not_exists({avail}, {g}) + {w.value(borrowed - amount)}")
    if borrowed:
        w.sets.append(f"{limit} = if_not_exists({limit}, {g}) + {w.value(borrowed)}")
    else:
        w.sets.append(f"{limit} = if_not_exists({limit}, {g})")
    w.add(prefix + target, amount)
    if threshold is not None:
        enough = f"{avail} >= {w.value(threshold - borrowed)}"
        # A slice not yet created has its virtual grant: it passes only if that covers it.
        fresh = default_grant + borrowed >= threshold
        w.condition(f"attribute_not_exists({avail}) OR {enough}" if fresh else enough)


def move(
    w: ItemWrite,
    prefix: str,
    default_grant: Decimal,
    delta: Decimal,
    guard: bool,
) -> None:
    """Move `delta` of allowance onto (or, negative, off) a slice: grant and avail together.

    `guard`: a slice giving allowance keeps `avail >= 0` (the condition holds the hard limit
    against concurrent reserves; the amounts are relative, so conservation needs no condition).
    """
    avail, limit = w.name(prefix + "avail"), w.name(prefix + "limit")
    g, d = w.value(default_grant), w.value(delta)
    w.sets.append(f"{limit} = if_not_exists({limit}, {g}) + {d}")
    w.sets.append(f"{avail} = if_not_exists({avail}, {g}) + {d}")
    if guard and delta < 0:
        enough = f"{avail} >= {w.value(-delta)}"
        # A slice not yet created has only its virtual grant to give.
        fresh = default_grant >= -delta
        w.condition(f"attribute_not_exists({avail}) OR {enough}" if fresh else enough)


def settle(w: ItemWrite, prefix: str, estimate: Decimal, charged: Decimal) -> None:
    """A hold leaves its slice: `charged` becomes spent, the rest comes back to avail there
    (as on an unsliced counter: the ledger's own settlement writes are these)."""
    w.add(prefix + "held", -estimate)
    w.add(prefix + "spent", charged)
    if charged != estimate:
        w.add(prefix + "avail", estimate - charged)


def add_borrow(
    tx: Any, base: Key, prefix: str, layout: Layout, moves: Mapping[int, Decimal]
) -> Decimal:
    """The donors' side of a borrow, in the reserve's own transaction; returns what moved
    (the borrower's `hold(..., borrowed=…)` takes it in the same transaction)."""
    for index, amount in sorted(moves.items()):
        w = tx.update(slice_key(base, index))
        move(w, prefix, virtual_grant(layout.limit, layout.slices, index), -amount, guard=True)
    return sum(moves.values(), ZERO)


def add_regrant(
    tx: Any,
    base: Key,
    prefix: str,
    layout: Layout,
    states: Sequence[SliceState],
    new_limit: Decimal,
    new_slices: int,
) -> bool:
    """Re-grant a period's slices to a new limit and/or slice count in one transaction.

    Every slice that is virtual under the old layout and would be read differently under the
    new one is materialized (created with its old virtual grant plus its move); slices that
    give allowance keep `avail >= 0` under concurrent reserves (the transaction is cancelled
    and computed again otherwise). The caller adds the policy update (new limit, slices, span,
    version + 1, conditioned on the version read) to the same transaction.
    """
    deltas = regrant_deltas(states, new_limit, new_slices)
    stored = {s.index for s in states if s.stored}
    spare = sum((s.avail for s in states), ZERO) + new_limit - sum((s.grant for s in states), ZERO)
    for index, delta in sorted(deltas.items()):
        materialize = index not in stored and index < max(layout.slices, new_slices)
        if not delta and not materialize:
            continue
        w = tx.update(slice_key(base, index))
        default = virtual_grant(layout.limit, layout.slices, index)
        # A virtual slice is created here (or was, by a concurrent first reserve) from the old
        # layout's grant, which the policy condition of the same transaction verifies.
        move(w, prefix, default, delta, guard=not (spare < 0 and index == 0))
    return spare < 0


# ---------------------------------------------------------------------- platform leases
LEASE_SECONDS = 60
"""How long a lease lives without renewal (Doorman uses 5 minutes; shorter strands less)."""
MIN_LEASE_SECONDS, MAX_LEASE_SECONDS = 5, 300


def lease_size(rate: Decimal, amount: Decimal, pool_avail: Decimal) -> Decimal:
    """What a renewal takes from the pool: the lease's recent rate (USD/s) for a lease's
    life, at least the request, at most a quarter of what the pool has (never below the
    request while the pool covers it)."""
    want = max(amount, (rate * LEASE_SECONDS).quantize(QUANTUM, rounding=ROUND_DOWN))
    return max(amount, min(want, (pool_avail / 4).quantize(QUANTUM, rounding=ROUND_DOWN)))


@dataclass(frozen=True)
class LeaseMoves:
    """A renewal planned on a snapshot: the pool gives `given` to the lease, after the recalled
    leases (`recalls`: index → amount) and the lease's own unused allowance of an older epoch
    (`returned`) came back to it; the pool ends at `avail >= 0` (D94)."""

    given: Decimal
    recalls: dict[int, Decimal]
    returned: Decimal = ZERO

    @property
    def pool_delta(self) -> Decimal:
        return sum(self.recalls.values(), ZERO) + self.returned - self.given


def lease_moves(
    states: Sequence[SliceState], lessee: int, amount: Decimal, size: Decimal, stale: bool = False
) -> LeaseMoves | None:
    """The renewal of lease `lessee` (index ≥ 1; index 0 is the pool) so it covers `amount`.

    Every allowance passes through the pool, which must end at `avail >= 0`: the lease's own
    unused allowance when it is `stale` (granted under an older epoch, D94) goes back first,
    recalls from other leases (richest first) fill what the pool lacks — its deficit after a
    limit cut included — and the pool gives the lease `size`, at least what it is short of
    `amount` (its own live allowance kept). None when the pool and every lease together cannot
    cover the amount: the only refusal."""
    if sum((s.avail for s in states), ZERO) < amount:
        return None
    by_index = {s.index: s for s in states}
    own = by_index[lessee].avail
    returned = max(own, ZERO) if stale else ZERO
    kept = own - returned
    pool = by_index[0].avail + returned
    short = amount - kept
    donors = sorted(
        (s for s in states if s.index not in (0, lessee) and s.avail > 0),
        key=lambda s: (-s.avail, s.index),
    )
    if pool + sum((d.avail for d in donors), ZERO) < short:
        return None
    if (
        short <= 0
    ):  # its own live allowance covers it: the renewal extends it, from a pool with room
        return LeaseMoves(min(size, max(pool, ZERO)), {}, returned)
    given = max(short, min(size, pool))
    recalls: dict[int, Decimal] = {}
    need = given - pool  # what the pool lacks to give `given` and end at avail >= 0
    for donor in donors:
        if need <= 0:
            break
        take = min(donor.avail, need)
        recalls[donor.index] = take
        need -= take
    if need > 0:
        return None
    return LeaseMoves(given, recalls, returned)


def lease_hold(
    w: ItemWrite,
    prefix: str,
    amount: Decimal,
    now: str,
    epoch: int,
    renew: tuple[LeaseMoves, str] | None,
    target: str = "held",
) -> None:
    """Hold (`target='held'`) or spend (`'spent'`) `amount` on a tenant's lease (`prefix` =
    `l_r_`): while it is live and of the quota's `epoch` (D94), or, with `renew = (moves,
    until)`, after the moves moved allowance through the pool in the same transaction (the
    lease then lives until `until`, of `epoch`)."""
    avail, until, ep = w.name(prefix + "avail"), w.name(prefix + "until"), w.name(prefix + "epoch")
    if renew is None:
        w.sets.append(f"{avail} = {avail} - {w.value(amount)}")
        w.condition(
            f"{avail} >= {w.value(amount)} AND {until} > {w.value(now)} AND {ep} = {w.value(epoch)}"
        )
    else:
        moves, new_until = renew
        delta = moves.given - moves.returned
        limit, zero = w.name(prefix + "limit"), w.value(ZERO)
        w.sets.append(f"{avail} = if_not_exists({avail}, {zero}) + {w.value(delta - amount)}")
        w.sets.append(f"{limit} = if_not_exists({limit}, {zero}) + {w.value(delta)}")
        w.sets.append(f"{until} = {w.value(new_until)}")
        w.sets.append(f"{ep} = {w.value(epoch)}")
        w.sets.append(f"{w.name(prefix + 'at')} = {w.value(now)}")
        enough = f"{avail} >= {w.value(amount - delta)}"
        fresh = moves.returned == 0 and moves.given >= amount
        w.condition(f"attribute_not_exists({avail}) OR {enough}" if fresh else enough)
    w.add(prefix + target, amount)


def count_move(pool: ItemWrite, pool_prefix: str) -> None:
    """Every write that moves allowance into or out of the pool counts on it (`l_r_moves`):
    since D94 every move between leases passes through the pool, so a snapshot read in parts
    sees whether any happened while it read (D97)."""
    pool.add(lease_prefix(pool_prefix) + "moves", 1)


def pool_move(w: ItemWrite, prefix: str, default_grant: Decimal, delta: Decimal) -> None:
    """A renewal's side of the pool: grant and avail move by `delta` and the pool ends at
    `avail >= 0` whatever the sign of `delta` (a pool left short by a limit cut gives nothing
    until recalls and returns have filled it, D94)."""
    avail, limit = w.name(prefix + "avail"), w.name(prefix + "limit")
    g, d = w.value(default_grant), w.value(delta)
    w.sets.append(f"{limit} = if_not_exists({limit}, {g}) + {d}")
    w.sets.append(f"{avail} = if_not_exists({avail}, {g}) + {d}")
    enough = f"{avail} >= {w.value(-delta)}"
    fresh = default_grant + delta >= 0
    w.condition(f"attribute_not_exists({avail}) OR {enough}" if fresh else enough)
    count_move(w, prefix)


def lease_return(
    lease: ItemWrite, pool: ItemWrite, lp: str, pp: str, v: Decimal, now: str, epoch: int
) -> None:
    """An expired lease, or one of an older epoch than the quota's (D94), gives its unused
    allowance `v` back to the pool."""
    avail, until, ep = lease.name(lp + "avail"), lease.name(lp + "until"), lease.name(lp + "epoch")
    lease.add(lp + "limit", -v)
    lease.add(lp + "avail", -v)
    stale = f"attribute_not_exists({ep}) OR {ep} <> {lease.value(epoch)}"
    lease.condition(f"({until} <= {lease.value(now)} OR {stale}) AND {avail} >= {lease.value(v)}")
    pool.add(pp + "limit", v)
    pool.add(pp + "avail", v)
    count_move(pool, pp)
