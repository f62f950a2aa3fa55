"""The name rule: what a name in a spec may be, in both syntaxes.

Names become Python attribute names, ``state_dict`` keys, path parts (``layer1.0.conv1``) and
identifiers in the source ``--emit python`` writes, so one rule holds everywhere, enforced where
the IR is built (:mod:`cnndsl.ir` validates every node, whichever front end made it):

- a name is a plain identifier, ``[A-Za-z_][A-Za-z0-9_]*``: no dots, spaces, quotes or control
  characters, not empty (a reference path part may also be a position, ``layer1.0``);
- a name that becomes a module path part (a layer, group, shortcut name; a reference's parts) may
  also be a *quoted name*, written ``"block1-0"`` in ``.cnn`` (any string in YAML): letters, digits,
  ``_`` and ``-`` (torchvision's RegNet ``block1-0``), not only digits (that reads as a position);
- an item's name may be a *template*, ``denselayer{i + 1}``: name characters around ``{expr}``
  parts, computed when the network is expanded (each repetition of ``x N as i`` gets its own
  name); the computed name meets the rule above;
- a name that becomes a submodule (a layer, group, stage, repeat or shortcut name) must not be an
  attribute ``torch.nn.Module`` or cnndsl's built modules already have (``forward``, ``training``,
  ``to``, ``state_dict``, ...), nor start with ``__`` (Python's and torch's internals: torch adds
  such attributes at run time), nor be ``input``, which names the network's input in references.

The spelling is decided in :func:`spelling_problem` alone. Quoted names stay injection-safe: no
dots, quotes, spaces or control characters can be in one, and emitted Python reaches such modules
through ``getattr``/``add_module`` with ``repr``'d strings, never as identifiers.
"""

from __future__ import annotations

import re

from .errors import Span, error

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
POSITION = re.compile(r"[0-9]+")
QUOTED = re.compile(r"[A-Za-z0-9_-]+")                 # a quoted name's characters
TEMPLATE_PART = re.compile(r"\{([^{}\n\r\x00]*)\}")      # `{expr}` in a template

# dir(torch.nn.Module()) (torch 2.x), kept here so `cnndsl check` needs no torch; a test compares it
# with the installed torch and with the attributes cnndsl's Network and Container classes add.
NN_MODULE_ATTRIBUTES = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__ __format__
__ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__ __init_subclass__ __le__ __lt__
__module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __setstate__ __sizeof__ __str__
__subclasshook__ __weakref__ _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
modules mtia named_buffers named_children named_modules named_parameters parameters
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
to_empty train training type xpu zero_grad
""".split())

# What cnndsl's modules add (cnndsl.emit.module: Network at the top, Container for stages and blocks).
CNNDSL_MODULE_ATTRIBUTES = frozenset({
    "spec_name", "input_shape", "output_names", "_plan", "bn_policy",   # Network
    "__getitem__", "__len__", "__iter__",                            # Container
})

RESERVED_MODULE_NAMES = NN_MODULE_ATTRIBUTES | CNNDSL_MODULE_ATTRIBUTES | {"input"}


def spelling_problem(name: object, quoted: bool = False, template: bool = False) -> str | None:
    """Why ``name`` is not a valid spelling of a name (None: it is). ``quoted``: the quoted form is
    allowed (module path parts); ``template``: ``{expr}`` parts are too (item names)."""
    if not isinstance(name, str):
        return f"a name must be text, got {type(name).__name__}"
    if name == "":
        return "a name cannot be empty"
    if IDENTIFIER.fullmatch(name):
        return None
    if template and is_template(name):  # its text around the {expr} parts; digits alone are fine there
        literal = TEMPLATE_PART.sub("", name)
        return None if literal == "" or POSITION.fullmatch(literal) else spelling_problem(literal, quoted=True)
    if quoted and QUOTED.fullmatch(name):
        return f"{name!r} is a position, not a name" if POSITION.fullmatch(name) else None
    allowed = QUOTED if quoted else IDENTIFIER
    bad = next((c for c in name if not allowed.fullmatch("_" + c)), None)
    if bad is None:
        return f"{name!r} starts with a digit"
    if bad == ".":
        return f"{name!r} contains a dot, which separates the parts of a path (layer1.0.conv1)"
    return f"{name!r} contains the character {bad!r}"


def is_template(name: str) -> bool:
    """``name`` has ``{expr}`` parts (computed when the network is expanded)."""
    if "{" not in name:
        return False
    literal = TEMPLATE_PART.sub("", name)     # shorter than name exactly when there is an {expr} part
    return literal != name and "{" not in literal and "}" not in literal


def template_pieces(name: str) -> list[tuple[str, bool]]:
    """A template's pieces in order: ``(text, is_expression)``."""
    out, at = [], 0
    for m in TEMPLATE_PART.finditer(name):
        if m.start() > at:
            out.append((name[at:m.start()], False))
        out.append((m.group(1), True))
        at = m.end()
    if at < len(name):
        out.append((name[at:], False))
    return out


NAME_HINT = "names are letters, digits and '_', not starting with a digit (e.g. conv1, layer_2)"
QUOTED_HINT = ("names are letters, digits and '_', not starting with a digit (e.g. conv1, layer_2); a layer "
               "name may also hold '-' or start with a digit when quoted: \"block1-0\": conv(64, k=3)")


def check_name(name: object, span: Span | None, what: str = "name", quoted: bool = False,
               template: bool = False) -> str:
    """``name`` if it is a valid name; otherwise a CnnError at ``span``."""
    problem = spelling_problem(name, quoted, template)
    if problem is not None:
        raise error(f"invalid {what}: {problem}", span, QUOTED_HINT if quoted else NAME_HINT)
    return name  # type: ignore[return-value]


def is_reserved_module_name(name: str) -> bool:
    """``name`` would clash with an attribute modules have (or may get: ``__*``), or with ``input``."""
    return name in RESERVED_MODULE_NAMES or name.startswith("__")


def check_module_name(name: object, span: Span | None, what: str = "layer name", template: bool = False) -> str:
    """A name that becomes a submodule: a valid (maybe quoted) name that is not an attribute modules
    already have; ``template``: it may be computed (``denselayer{i + 1}``, checked again once computed)."""
    check_name(name, span, what, quoted=True, template=template)
    if template and is_template(name):  # type: ignore[arg-type]
        return name  # type: ignore[return-value]
    if is_reserved_module_name(name):  # type: ignore[arg-type]
        why = ("'input' names the network's input in references" if name == "input"
               else f"'{name}' is already an attribute of every torch.nn.Module" if name in RESERVED_MODULE_NAMES
               else "names starting with '__' belong to Python and torch")
        raise error(f"{what} '{name}' cannot be used: {why}", span,
                    f"rename it, e.g. '{name.strip('_') or 'layer'}_1'")  # type: ignore[union-attr]
    return name  # type: ignore[return-value]


def check_path_part(part: object, span: Span | None) -> str:
    """A part of a reference path: a name, or a position (``layer1.0``)."""
    if isinstance(part, str) and POSITION.fullmatch(part):
        return part
    return check_name(part, span, "reference", quoted=True)
