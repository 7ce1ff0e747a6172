"""The spec reference in README.md, generated from the models so that it cannot drift from them.

python -m mlc.spec.reference                    print the Markdown
python -m mlc.spec.reference --write README.md  replace the block between the spec-reference markers
python -m mlc.spec.reference --check README.md  exit 1 if that block is stale
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlc.spec.models import Spec

START = "<!-- spec-reference:start -->"
END = "<!-- spec-reference:end -->"


def reference_markdown() -> str:
    out = [
        "Every field of `mlproject.yaml`, generated from the models by `python -m mlc.spec.reference`. "
        "`[]` marks a list item, `<name>` a key you choose; an empty default means the field is optional "
        "and unset. Editors show the same text as hover help, from `schemas/mlproject.schema.json`."
    ]
    rows: list[tuple[str, str, str, str]] = []
    _rows(Spec, "", rows)
    sections: dict[str, list[str]] = {}
    for path, typ, default, meaning in rows:
        top = path.split(".")[0].split("[")[0]
        simple = path == top and typ != "mapping" and not typ.startswith(("list", "map"))
        sections.setdefault("Top level" if simple else top, []).append(
            f"| `{path}` | {typ} | {default} | {_cell(meaning)} |"
        )
    for title, lines in sections.items():
        heading = title if title == "Top level" else f"`{title}`"
        out += ["", f"### {heading}", "", "| Field | Type | Default | Meaning |", "|---|---|---|---|", *lines]
    return "\n".join(out) + "\n"


def _rows(model: type[BaseModel], prefix: str, rows: list, variant: str | None = None) -> None:
    for name, f in model.model_fields.items():
        key = f.alias or name
        path = f"{prefix}.{key}" if prefix else key
        ann = f.annotation
        rows.append((path, _type(ann), _default(f), (f.description or "").strip()))
        _children(ann, path, rows)


def _children(ann: Any, path: str, rows: list) -> None:
    origin = typing.get_origin(ann)
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        _rows(ann, path, rows)
    elif origin is list:
        inner = args[0]
        members = _union_models(inner)
        if len(members) > 1:
            for m in members:
                tag, value = _tag(m)
                rows.append(
                    (
                        f"{path}[] ({tag}: {value})",
                        "mapping",
                        "",
                        (m.__doc__ or "").strip() or _tag_description(m, tag),
                    )
                )
                _rows(m, f"{path}[]", rows)
        else:
            _children(inner, f"{path}[]", rows)
    elif origin is dict:
        _children(args[-1], f"{path}.<name>", rows)
    elif origin in (typing.Union, types.UnionType) and len(args) == 1:
        _children(args[0], path, rows)


def _union_models(ann: Any) -> list[type[BaseModel]]:
    if typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]


def _tag(m: type[BaseModel]) -> tuple[str, str]:
    for name, f in m.model_fields.items():
        if typing.get_origin(f.annotation) is typing.Literal and f.is_required():
            return name, typing.get_args(f.annotation)[0]
    return "", ""


def _tag_description(m: type[BaseModel], tag: str) -> str:
    return (m.model_fields[tag].description or "") if tag else ""


def _type(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        models = _union_models(ann)
        if len(models) > 1:
            return "mapping"
        return " or ".join(dict.fromkeys(parts))
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"map of {_type(args[0])} to {_type(args[1])}"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, "any")


def _default(f: Any) -> str:
    if f.default_factory is not None:
        v = f.default_factory()
        if isinstance(v, BaseModel):
            v = v.model_dump(mode="json", by_alias=True, exclude_none=True)
        elif isinstance(v, dict):
            v = {
                k: x.model_dump(mode="json", exclude_defaults=True) if isinstance(x, BaseModel) else x
                for k, x in v.items()
            }
        return f"`{json.dumps(v, separators=(', ', ': '))}`" if v not in ({}, []) else f"`{json.dumps(v)}`"
    if f.default is PydanticUndefined:
        return "required"
    if f.default is None:
        return ""
    return f"`{json.dumps(f.default)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def replace_block(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mlc.spec.reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--write", metavar="README", help="replace the marked block of this file")
    ap.add_argument("--check", metavar="README", help="exit 1 if the marked block of this file is stale")
    args = ap.parse_args(argv)
    block = reference_markdown()
    if args.write:
        p = Path(args.write)
        p.write_text(replace_block(p.read_text(encoding="utf-8"), block), encoding="utf-8")
        return 0
    if args.check:
        p = Path(args.check)
        text = p.read_text(encoding="utf-8")
        if replace_block(text, block) != text:
            print(
                f"{p}: the spec reference is stale; run: python -m mlc.spec.reference --write {p}",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
