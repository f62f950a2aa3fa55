"""Load a state dict into a module by name: strict by default, with a readable table when the keys
do not match; partial loading (matching keys only) when asked, reporting what was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import Span, error

if TYPE_CHECKING:
    import torch
    from torch import nn

SHOWN = 8   # keys listed per section of a mismatch table


@dataclass
class LoadReport:
    loaded: int
    total: int                                   # tensors the module holds
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    misshaped: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    ignored: int = 0                             # keys of parts the cut left out (a classifier)
    prefix: str = ""                             # the file's keys were read under this prefix

    def line(self, what: str, source: str, strict: bool) -> str:
        text = f"{what}: loaded {self.loaded} of {self.total} tensors from {source} ({'strict' if strict else 'partial'})"
        extra = []
        if self.prefix:
            extra.append(f"the file's keys under '{self.prefix}'")
        if self.ignored:
            extra.append(f"{self.ignored} tensors of layers the cut leaves out not used")
        if self.missing:
            extra.append(f"{len(self.missing)} keep their initial values (" + _few(self.missing) + ")")
        if self.unexpected:
            extra.append(f"{len(self.unexpected)} in the file unused (" + _few(self.unexpected) + ")")
        if self.misshaped:
            extra.append(f"{len(self.misshaped)} of another shape unused (" + _few([k for k, *_ in self.misshaped]) + ")")
        return text + ("; " + "; ".join(extra) if extra else "")


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys) - n} more)" if len(keys) > n else "")


def _shape(s: Iterable[int]) -> str:
    s = tuple(s)
    return "×".join(map(str, s)) if s else "scalar"


def mismatch_table(missing: list[str], unexpected: list[str], misshaped: list[tuple[str, tuple, tuple]],
                   own: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """The keys that do not match, one section per kind (a title line, then a key and its shape per
    line): the notes of the diagnostic."""
    sections: list[str] = []

    def section(title: str, rows: list[str]) -> None:
        if not rows:
            return
        lines = [f"{title}:"] + [f"    {r}" for r in rows[:SHOWN]]
        if len(rows) > SHOWN:
            lines.append(f"    … and {len(rows) - SHOWN} more")
        sections.append("\n".join(lines))

    width = max((len(k) for k in [*missing[:SHOWN], *unexpected[:SHOWN], *(m[0] for m in misshaped[:SHOWN])]),
                default=0)
    section("missing (in the model, not in the file)", [f"{k:<{width}}  {_shape(own[k].shape)}" for k in missing])
    section("unexpected (in the file, not in the model)",
            [f"{k:<{width}}  {_shape(state[k].shape)}" for k in unexpected])
    section("mis-shaped", [f"{k:<{width}}  file {_shape(f)}, model {_shape(m)}" for k, f, m in misshaped])
    return sections


def _prefix(own: set[str], keys: list[str]) -> str:
    """A prefix of the file's keys under which they are the module's (a checkpoint of a network
    that held this part under a name: ``backbone.layer1.0.conv1.weight``)."""
    if own & set(keys):
        return ""
    best, hits = "", 0
    for p in sorted({k.split(".")[0] for k in keys}):
        n = sum(1 for k in keys if k.startswith(p + ".") and k[len(p) + 1:] in own)
        if n > hits:
            best, hits = p + ".", n
    return best if hits * 2 >= len(own) else ""


def load_matched(module: "nn.Module", state: dict[str, "torch.Tensor"], *, strict: bool = True,
                 ignore: Iterable[str] = (), what: str = "the network", source: str = "",
                 span: Span | None = None, flag: str | None = None) -> LoadReport:
    """Copy ``state`` into ``module`` by key. Strict: every key must match in name and shape (else a
    CnnError with the table); partial: load what matches and report the rest."""
    own = module.state_dict()
    prefix = _prefix(set(own), list(state))
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    ignored = set(ignore)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and k not in ignored]
    misshaped = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                 if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    usable = {k: state[k] for k in own if k in state and tuple(state[k].shape) == tuple(own[k].shape)}
    n_ignored = sum(1 for k in state if k in ignored and k not in own)
    where = f"{flag} {source}" if flag else source
    if (strict and (missing or unexpected or misshaped)) or not usable:
        counts = ", ".join(f"{n} {w}" for n, w in ((len(missing), "missing"), (len(unexpected), "unexpected"),
                                                     (len(misshaped), "mis-shaped")) if n)
        headline = (f"weights {where} do not match {what}: {counts}" if usable else
                    f"no tensor of weights {where} matches {what} by name ({counts})")
        hint = ("was the file saved from another architecture, or with other layer names? "
                + ("strict = false loads the matching keys and reports the rest" if usable and not flag else
                   "the keys must be the model's state_dict names"))
        table = mismatch_table(missing, unexpected, misshaped, own, state)
        raise error(headline, span, hint, notes=[(None, section) for section in table])
    module.load_state_dict(usable, strict=False)
    return LoadReport(len(usable), len(own), missing, unexpected, misshaped, n_ignored, prefix)
