"""How a command fails: one line on stderr, exit 1; the traceback only under `--verbose`; both masked."""
from __future__ import annotations

import sys
import traceback
from typing import TextIO

from nbflow.exceptions import NbflowException


class CliError(NbflowException):
    """A failure whose message already says what is wrong and what to do (bad input, failed run)."""


def one_line(err: BaseException) -> str:
    """The first line of the error's message; errors nbflow did not raise on purpose keep their type."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(err, NbflowException):
        return first or type(err).__name__
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def report_failure(err: BaseException, *, verbose: bool, stream: TextIO | None = None) -> int:
    """Print `error: <one line>` (after the traceback when verbose) and return the exit code, 1."""
    from nbflow.utils.masking import masker

    out = stream or sys.stderr
    if verbose:
        out.write(masker.redact("".join(traceback.format_exception(type(err), err, err.__traceback__))))
    message = masker.redact(one_line(err))
    if not verbose and not isinstance(err, NbflowException):
        message += " (run with --verbose for the traceback)"
    print(f"error: {message}", file=out, flush=True)
    return 1
