"""Payload validation against the JSON schemas the ``ocpp`` package ships, for any OCPP version.

A :class:`Schemas` holds one version's. Its :meth:`~Schemas.validate` checks a CALL's payload (or,
with ``response=True``, a CALLRESULT's) and raises :class:`swarm.protocol.ocppj.FrameError` with
the OCPP-J error code a CALLERROR answering it carries; :meth:`~Schemas.check_answer` checks a
CALLRESULT the same way, with a description fit to count by.

Every message of a load test is checked, so the check is compiled: each schema becomes Python
code (``fastjsonschema``, draft 4 as the ``ocpp`` package reads every version's), 10 to 30 times
quicker than ``jsonschema``. A payload it refuses is checked again with ``jsonschema``, whose
verdict and first violation are the ones reported: the compiled check only lets the valid
through sooner (``tests/test_schemas.py`` holds the two to the same verdicts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match
from ocpp.messages import get_validator

from swarm.protocol import ocppj

# Error codes by the jsonschema keyword that failed; anything else is a PropertyConstraintViolation.
_CODES = {
    "type": ocppj.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ocppj.TYPE_CONSTRAINT_VIOLATION,
    "required": ocppj.OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ocppj.FORMATION_VIOLATION,
}


class Schemas:
    """The JSON schemas of one OCPP version, as the ``ocpp`` package ships them.

    ``decimal`` names the ``(message type, action)`` pairs whose schemas have ``"multipleOf":
    0.1``: payload and schema are parsed as Decimal there, for as floats 21.4 / 0.1 is not an
    integer. The ocpp package loads these with Decimal too, and its cache is keyed by name
    alone, so asking for anything else would get (or poison) a different validator.
    """

    __slots__ = ("_compiled", "_validators", "actions", "decimal", "version")

    def __init__(self, version: str, *, decimal: frozenset[tuple[int, str]] = frozenset()) -> None:
        self.version = version
        self.actions = _actions(version)
        """Every action of the version, of either side: those it has a request schema for."""
        self.decimal = decimal
        # Validators by action, one dict per direction: a lookup on the hot path, nothing more.
        self._validators: dict[int, dict[str, Draft4Validator]] = {
            ocppj.CALL: {},
            ocppj.CALLRESULT: {},
        }
        self._compiled: dict[int, dict[str, Callable[[Any], Any]]] = {
            ocppj.CALL: {},
            ocppj.CALLRESULT: {},
        }

    def validate(self, action: str, payload: dict[str, Any], *, response: bool = False) -> None:
        """Check ``payload`` against the schema of ``action``'s request (or response).

        Raises :class:`~swarm.protocol.ocppj.FrameError` (with no ``unique_id``): NotImplemented
        for an action without a schema, else the OCPP-J code of the first violation.
        """
        error = self._violation(action, payload, response)
        if error is not None:
            raise ocppj.FrameError(
                _CODES.get(error.validator, ocppj.PROPERTY_CONSTRAINT_VIOLATION), _describe(error)
            )

    def check_answer(self, action: str, payload: dict[str, Any]) -> None:
        """Check a CALLRESULT's ``payload`` against the response schema of ``action``.

        As :meth:`validate` with ``response=True``, but the description is one of a bounded set
        of texts, made of the schema alone: where (property names, array indices left out) and
        what was violated, never a value or property name taken from the payload. Errors
        counted by their text (Locust's error table) stay a few rows, whatever a CSMS answers.
        """
        error = self._violation(action, payload, True)
        if error is not None:
            raise ocppj.FrameError(
                _CODES.get(error.validator, ocppj.PROPERTY_CONSTRAINT_VIOLATION),
                _describe(error, bounded=True),
            )

    def _violation(
        self, action: str, payload: dict[str, Any], response: bool
    ) -> ValidationError | None:
        """The first violation of the schema, or None when ``payload`` fits it."""
        message_type = ocppj.CALLRESULT if response else ocppj.CALL
        compiled = self._compiled[message_type].get(action)
        if compiled is not None:
            try:
                compiled(payload)
                return None
            except Exception:  # a refusal, or anything odd: jsonschema has the last word
                pass
        validator = self._validators[message_type].get(action)
        if validator is None:
            validator = self._load(message_type, action)
        if (message_type, action) in self.decimal:
            payload = json.loads(json.dumps(payload), parse_float=Decimal)
        if validator.is_valid(payload):
            return None
        error = best_match(validator.iter_errors(payload))
        assert error is not None  # is_valid said there is one
        return error

    def _load(self, message_type: int, action: str) -> Draft4Validator:
        # The action becomes part of a file path: only a plain name may reach the file system.
        if not (action.isascii() and action.isalnum()):
            raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, f"unknown action {action[:64]!r}")
        parse_float = Decimal if (message_type, action) in self.decimal else float
        try:
            validator = get_validator(message_type, action, self.version, parse_float=parse_float)
        except OSError:
            raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, f"unknown action {action!r}") from None
        self._validators[message_type][action] = validator
        if (message_type, action) not in self.decimal:  # Decimal payloads: jsonschema's alone
            self._compiled[message_type][action] = compile_schema(validator.schema)
        return validator


def compile_schema(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """``schema`` as a compiled check, read as draft 4 (as the ``ocpp`` package reads it,
    whatever its ``$schema`` says), with formats unchecked (as ``Draft4Validator`` without a
    format checker does) and no defaults filled in: it never changes the payload. Raises
    ``fastjsonschema.JsonSchemaException`` for a payload it refuses."""
    return fastjsonschema.compile(
        {**schema, "$schema": "http://json-schema.org/draft-04/schema#"},
        use_formats=False,
        use_default=False,
    )


def _actions(version: str) -> frozenset[str]:
    # The ocpp package names a request's schema <Action>.json in 1.6, <Action>Request.json later.
    folder = resources.files("ocpp") / f"v{version.replace('.', '')}" / "schemas"
    names = (entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".json"))
    return frozenset(
        name.removesuffix("Request") for name in names if not name.endswith("Response")
    )


def _describe(error: ValidationError, *, bounded: bool = False) -> str:
    where = _path(error.absolute_path, bounded=bounded)
    keyword = error.validator
    if keyword == "additionalProperties" and bounded:
        return f"{where}: a property the schema does not have"  # the message names it
    if keyword in ("required", "additionalProperties"):
        return f"{where}: {error.message}"  # these messages name properties, not values
    if keyword == "type":
        return f"{where}: not of type {error.validator_value}"
    if keyword == "maxLength":
        return f"{where}: longer than {error.validator_value} characters"
    if keyword == "enum":
        return f"{where}: not one of {', '.join(map(str, error.validator_value))}"
    if isinstance(error.validator_value, (int, float, str, Decimal)):
        return f"{where}: violates {keyword} {error.validator_value}"
    return f"{where}: violates {keyword}"


def _path(parts: Iterable[str | int], *, bounded: bool = False) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += "[]" if bounded else f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "payload"
