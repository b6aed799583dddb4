"""Each key's one-line description for `--help`, read from the comment the schema gives its
field (on the field's line, or the lines just above it), so that it is written once."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
import typing

WIDTH = 100  # a description is cut to one terminal line


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """{field: its comment} for the fields `cls` itself defines."""
    source = textwrap.dedent(inspect.getsource(cls))
    tokens = [tok for tok in tokenize.generate_tokens(io.StringIO(source).readline)
              if tok.type == tokenize.COMMENT]
    comments = {tok.start[0]: tok.string.lstrip("#").strip() for tok in tokens}
    alone = {tok.start[0] for tok in tokens if tok.line.strip().startswith("#")}
    found = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = comments.get(node.end_lineno) if node.end_lineno not in alone else None
            if text is None:  # the comment block just above the field
                above, line = [], node.lineno - 1
                while line in alone:
                    above.insert(0, comments[line])
                    line -= 1
                text = " ".join(above)
            found[node.target.id] = text
    return found


def _comment(schema: type, name: str) -> str:
    for cls in schema.__mro__:
        if dataclasses.is_dataclass(cls) and name in field_comments(cls):
            return field_comments(cls)[name]
    return ""


def _one_line(text: str) -> str:
    return text if len(text) <= WIDTH else text[:WIDTH - 1].rsplit(" ", 1)[0] + " …"


def key_lines(schema: type, prefix: str = "", leave_out: tuple[str, ...] = ()) -> list[str]:
    """`key: description` for every key of `schema`, nested schemas as dotted keys."""
    lines = []
    hints = typing.get_type_hints(schema)
    for item in dataclasses.fields(schema):
        key = f"{prefix}{item.name}"
        if key in leave_out:
            continue
        kind = hints.get(item.name)
        nested = [t for t in (kind, *typing.get_args(kind)) if dataclasses.is_dataclass(t)]
        if nested:
            lines += key_lines(nested[0], f"{key}.", leave_out)
        else:
            lines.append(f"  {key}: {_one_line(_comment(schema, item.name)) or '—'}")
    return lines
