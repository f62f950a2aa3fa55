"""How many layers a spec expands to, counted before expanding it (the layer limit is checked by
arithmetic before the work it bounds is done). Mixed into :class:`cnndsl.expand.Expander`: one
``estimate_<kind>`` method per construct, found by the item's kind like the other stages."""

from __future__ import annotations

from typing import Any

from . import expr as E
from .errors import CnnError, error
from .ir import BlockDef, From, Group, Item, Layer, Merge, Parallel, Residual, Split


class SizeEstimate:
    """Node counts without expansion: ``estimate`` (an upper estimate, or with ``floor`` a lower
    bound) and ``check_size`` (the layer limit, refused before anything is expanded)."""

    blocks: dict[str, BlockDef]
    estimates: dict[tuple[str, bool], int]
    limits: Any

    def estimate(self, item: Item, names: dict[str, Any], floor: bool = False) -> int:
        """Nodes an item expands to, without expanding it (repeats multiply; unknown counts → 1).
        ``floor``: a lower bound instead (conditional items and shortcuts count 0)."""
        if item.kind == "from" or (floor and item.when is not None):
            return 0
        n = getattr(self, f"estimate_{item.kind}")(item, names, floor)
        if item.repeat is not None:
            try:
                count = E.evaluate(item.repeat.count, E.Env(names))
            except CnnError:
                count = 1
            n *= count if isinstance(count, int) and count > 0 else 1
        return n

    def body_estimate(self, body: tuple, names: dict[str, Any], floor: bool) -> int:
        return sum(self.estimate(i, names, floor) for i in body)

    def estimate_layer(self, item: Layer, names: dict[str, Any], floor: bool) -> int:
        block = self.blocks.get(item.op)
        return 1 if block is None else self.block_estimate(block, floor)

    def estimate_group(self, item: Group, names: dict[str, Any], floor: bool) -> int:
        return self.body_estimate(item.body, names, floor)

    def estimate_residual(self, item: Residual, names: dict[str, Any], floor: bool) -> int:
        n = 1 + self.body_estimate(item.body, names, floor)
        sc = item.shortcut
        if sc is not None and not (floor and sc.when is not None):
            n += self.body_estimate(sc.body, names, floor)
        return n

    def estimate_parallel(self, item: Parallel, names: dict[str, Any], floor: bool) -> int:
        return 1 + sum(self.body_estimate(b, names, floor) for b in item.branches)

    def estimate_split(self, item: Split, names: dict[str, Any], floor: bool) -> int:
        return len(item.names)

    def estimate_merge(self, item: Merge, names: dict[str, Any], floor: bool) -> int:
        return 1

    estimate_backbone = estimate_merge  # one node per tap at most; counted as one before tracing

    def estimate_from(self, item: From, names: dict[str, Any], floor: bool) -> int:
        return 0

    def block_estimate(self, block: BlockDef, floor: bool = False) -> int:
        key = (block.name, floor)
        if key not in self.estimates:
            self.estimates[key] = 1  # cycles are refused before expansion
            n = sum(self.estimate(i, {}, floor) for i in block.body)
            self.estimates[key] = n if floor else max(1, n)
        return self.estimates[key]

    def check_size(self, body: tuple[Item, ...], names: dict[str, Any]) -> None:
        """Refuse, before expanding anything, a network that has more layers than the limit even
        counting only what is certain (a long list of items costs time to expand and to refuse)."""
        total = 0
        for item in body:
            n = self.estimate(item, names, floor=True)
            total += n
            if total <= self.limits.max_layers:
                continue
            if item.repeat is not None and n > self.limits.max_layers:  # the repeat check's own words
                raise error(f"this repeat expands to about {self.estimate(item, names):,} layers, above the "
                            f"limit of {self.limits.max_layers:,}", item.repeat.span or item.span,
                            "reduce the repeat counts (nested repeats multiply)")
            raise error(f"the network has at least {total:,} layers up to here, above the limit of "
                        f"{self.limits.max_layers:,}", item.span,
                        "use blocks and repeats for repeated structure, or raise the limit (--max-layers)")
