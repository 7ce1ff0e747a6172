"""Thin click commands. The only place that maps errors to exit codes:
0 ok, 1 the user's input is wrong (MlcError), 2 usage error, 3 an internal bug (with traceback).

Heavy libraries are imported inside each command, so `mlc --help` and `mlc validate` stay fast.
"""

from __future__ import annotations

import sys
import traceback

import click

from mlc import __version__
from mlc.errors import MlcError, SpecError, UsageError

EPILOG_VALIDATE = """\b
Examples:
  mlc validate specs/churn
  mlc validate specs/*/mlproject.yaml --format json
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mlc")
def cli() -> None:
    """mlc compiles one mlproject.yaml into Argo Workflows, Kubeflow Pipelines, KServe and Prometheus
    manifests, and runs the same pipeline locally.

    \b
    Quick start:
      mlc validate specs/churn     check a spec, with compiler-style errors
      mlc run specs/churn          train, gate and register locally (MLflow in .mlc/)
      mlc compile specs/           write generated/<project>/<env>/...
      mlc serve specs/churn        serve the production model (Open Inference Protocol v2)
    """


@cli.command(epilog=EPILOG_VALIDATE)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format; json prints one object with every diagnostic.")
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check specs (files, or directories holding mlproject.yaml) and report every error."""
    import json

    from mlc.spec.validate import load_spec, resolve_path

    errors: list[SpecError] = []
    results = []
    for p in _expand(paths):
        try:
            sf = load_spec(p)
            results.append({"file": str(sf.path), "valid": True, "diagnostics": []})
            if fmt == "text":
                click.echo(f"{sf.path}: ok ({sf.spec.metadata.name}, {len(sf.spec.environments)} environments)")
        except SpecError as e:
            errors.append(e)
            results.append({"file": e.file, "valid": False, "diagnostics": [d.to_json() for d in e.diagnostics]})
            if fmt == "text":
                click.echo(e.render(), err=True)
    if fmt == "json":
        click.echo(json.dumps({"valid": not errors, "files": results}, indent=2))
    if errors:
        raise _Exit(1)
    del resolve_path


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yaml (the same as schemas/mlproject.schema.json)."""
    from mlc.spec.schema import schema_text

    click.echo(schema_text(), nl=False)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _expand(paths: tuple[str, ...]) -> list[str]:
    """A directory without mlproject.yaml expands to the specs in its immediate subdirectories."""
    from pathlib import Path

    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir() and not (path / "mlproject.yaml").exists():
            found = sorted(str(c) for c in path.glob("*/mlproject.yaml"))
            if not found:
                raise UsageError(f"{p}: no mlproject.yaml here or in its subdirectories")
            out.extend(found)
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mlc", standalone_mode=False)
        return 0
    except _Exit as e:
        return e.code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except MlcError as e:
        click.echo(e.render(), err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception:  # noqa: BLE001 - a bug in mlc: show it, exit 3
        traceback.print_exc()
        click.echo(f"internal error in mlc {__version__}: please report this with the traceback above", err=True)
        return 3


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
