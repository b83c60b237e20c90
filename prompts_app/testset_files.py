"""What is in a test set file: the CSV and JSONL we read on import and write on export.

Pure Python, no ORM. One case per CSV row or JSONL line:

* CSV: a header row, then one row per case. Every column is a variable except the
  reserved ones: `expected_output` (or `expected`) is the expected output, and `turns`
  (or `input`) is the conversation: a JSON list of {role, content}, or plain text for a
  single user turn. A CSV cell cannot say "no such variable", so an empty cell is the
  variable set to "" (JSONL keeps the difference).
* JSONL: one JSON object a line, either {"variables": {...}, "expected_output": ...,
  "turns": [...]} or a flat object read like a CSV row.

Files are UTF-8, with or without a BOM. Limits: 10 MB, 10,000 cases, 100,000 characters
a cell. Exports write what import reads; in CSV a cell a spreadsheet would run as a
formula (= + - @, tab, CR) gets a leading `'`, which import removes again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prompts_app.jsontext import MAX_DEPTH
from prompts_app.models import SPEAKERS

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_CELL_CHARS = 100_000
MAX_TURNS = 100
# Variables (columns) of a set: more is a file gone wrong, and would make every page of the set huge.
MAX_VARIABLES = 100
MAX_ERRORS = 50  # listed; more are counted

EXPECTED_NAMES = ("expected_output", "expected")
TURNS_NAMES = ("turns", "input")
RESERVED = frozenset(EXPECTED_NAMES + TURNS_NAMES)
VARIABLE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # as in models.VARIABLE_RE
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class CaseRow:
    line: int
    variables: dict[str, str] = field(default_factory=dict)
    turns: list[dict[str, str]] = field(default_factory=list)
    expected_output: str = ""
    errors: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # needed variables it leaves empty (see mark_empty)


@dataclass
class ParsedFile:
    format: str = ""
    rows: list[CaseRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the whole file: nothing can be imported

    @property
    def columns(self) -> list[str]:
        found: dict[str, None] = {}
        for row in self.rows:
            for name in row.variables:
                found.setdefault(name, None)
        return list(found)

    @property
    def bad_rows(self) -> list[CaseRow]:
        return [row for row in self.rows if row.errors]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.problems and not self.bad_rows

    @property
    def empty_rows(self) -> list[CaseRow]:
        return [row for row in self.rows if row.empty and not row.errors]


def mark_empty(parsed: ParsedFile, needed: list[str]) -> None:
    """Note on each row the `needed` variables it leaves empty (or, in JSONL, out). Such a row is
    imported as it is only if the person says so: a batch would send an empty value with nothing
    in that place, and a JSONL row that leaves the key out with `{{name}}` as typed (new-user
    trial: "complaint" empty on row 7 was accepted without a word)."""
    for row in parsed.rows:
        row.empty = [name for name in needed if blank_value(row.variables.get(name, ""))]


# Characters that show nothing and are not whitespace to str.strip(): a cell of only these is empty
# too (hostile trial: a zero-width space or a NUL passed as a value).
_INVISIBLE = dict.fromkeys(map(ord, "\x00\u200b\u200c\u200d\u2060\ufeff"))


def blank_value(value: object) -> bool:
    """No value, or one that shows nothing: a case "leaves the variable empty" (import, batch start)."""
    return value is None or (isinstance(value, str) and not value.translate(_INVISIBLE).strip())


def empty_warnings(rows: Iterable[CaseRow]) -> list[str]:
    return [f"Line {row.line}: {name} is empty" for row in rows for name in row.empty]


def parse_file(data: bytes, *, filename: str = "") -> ParsedFile:
    """Everything wrong with the file is reported (never raised), with line numbers."""
    if len(data) > MAX_FILE_BYTES:
        return ParsedFile(
            problems=[f"The file is over {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into smaller files."]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParsedFile(
            problems=[
                f"The file is not UTF-8 (byte {exc.start + 1} is not valid UTF-8). "
                "Save it as UTF-8 (with or without BOM) and upload it again."
            ]
        )
    fmt = guess_format(text, filename)
    parsed = _parse_jsonl(text) if fmt == "jsonl" else _parse_csv(text)
    parsed.format = fmt
    if not parsed.problems and len(parsed.columns) > MAX_VARIABLES:
        parsed.problems.append(
            f"The file has {len(parsed.columns):,} variables in all; a test set holds at most {MAX_VARIABLES}."
        )
    if not parsed.rows and not parsed.problems:
        parsed.problems.append("The file has no cases.")
    return parsed


def guess_format(text: str, filename: str = "") -> str:
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "jsonl" if text.lstrip()[:1] == "{" else "csv"


def _too_many(parsed: ParsedFile) -> bool:
    if len(parsed.rows) > MAX_ROWS:
        parsed.rows = parsed.rows[:MAX_ROWS]
        parsed.problems.append(f"The file has more than {MAX_ROWS:,} cases; split it into smaller files.")
        return True
    return False


def _parse_csv(text: str) -> ParsedFile:
    parsed = ParsedFile()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            # An empty line, or a row of empty fields (a spreadsheet's trailing ",,,"), is no case;
            # but a one-column file's quoted "" is a case whose value is empty, warned about like any
            # other (new-user trial: such rows vanished, while a second column kept them).
            if not cells or (not any(cell.strip() for cell in cells) and (header is None or len(cells) > 1)):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                parsed.problems.extend(_header_problems(header))
                if parsed.problems:
                    return parsed
                continue
            parsed.rows.append(_csv_row(start, header, cells))
            if _too_many(parsed):
                return parsed
    except csv.Error as exc:
        detail, where = str(exc), reader.line_num
        if "field larger than field limit" in detail:
            detail = f"a cell is longer than {MAX_CELL_CHARS:,} characters"
        elif "unexpected end of data" in detail:
            # The reader got to the end of the file looking for the closing quote: name the row the
            # quote opened in, not the file's last line (new-user trial: "Line 3" for a quote on line 2).
            where, detail = line, "a quote opened in this row is never closed"
        parsed.problems.append(f"Line {where}: this is not valid CSV ({detail}).")
    return parsed


def _header_problems(header: list[str]) -> list[str]:
    problems = []
    for number, name in enumerate(header, 1):
        if not name:
            problems.append(f"Line 1: column {number} has no name.")
        elif name.lower() not in RESERVED and not VARIABLE_NAME_RE.fullmatch(name):
            problems.append(f"Line 1: column “{name[:80]}” is not a variable name (letters, digits, _ . -).")
    variables = [name for name in header if name.lower() not in RESERVED]
    if len(variables) > MAX_VARIABLES:
        return [f"Line 1: the file has {len(variables):,} variable columns; a test set holds at most {MAX_VARIABLES}."]
    lowered = [name.lower() for name in header]
    for name in sorted({n for n in lowered if n and lowered.count(n) > 1}):
        problems.append(f"Line 1: column “{name[:80]}” appears more than once.")
    for group in (EXPECTED_NAMES, TURNS_NAMES):
        if all(name in lowered for name in group):
            problems.append(f"Line 1: use one of the columns {' or '.join(group)}, not both.")
    return problems


def _csv_row(line: int, header: list[str], cells: list[str]) -> CaseRow:
    row = CaseRow(line=line)
    if len(cells) != len(header):
        row.errors.append(
            f"{len(cells)} cell{'' if len(cells) == 1 else 's'}, but the header has {len(header)} columns."
        )
        return row
    record = {name: _unescape(cell) for name, cell in zip(header, cells, strict=True)}
    _fill(row, record)
    return row


def _parse_jsonl(text: str) -> ParsedFile:
    parsed = ParsedFile()
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        row = CaseRow(line=number)
        parsed.rows.append(row)
        try:
            record = json.loads(raw)
        except RecursionError:
            row.errors.append(f"nested too deeply (at most {MAX_DEPTH} levels).")
        except ValueError as exc:
            message = getattr(exc, "msg", "not JSON")
            column = getattr(exc, "colno", None)
            row.errors.append(f"not valid JSON ({message}{f' at column {column}' if column else ''}).")
        else:
            _jsonl_record(row, record)
        if len(row.variables) > MAX_VARIABLES:
            parsed.problems.append(
                f"Line {number}: {len(row.variables):,} variables; a test set holds at most {MAX_VARIABLES}."
            )
            break
        if _too_many(parsed):
            break
    return parsed


def _jsonl_record(row: CaseRow, record: Any) -> None:
    if not isinstance(record, dict):
        row.errors.append("each line must be a JSON object.")
        return
    if "variables" not in record:
        _fill(row, record)  # a flat object: read like a CSV row
        return
    extra = sorted(set(record) - {"variables", *RESERVED})
    if extra:
        row.errors.append(f"unknown key {', '.join(extra)[:200]} (use variables, expected_output, turns).")
    variables = record["variables"]
    if not isinstance(variables, dict):
        row.errors.append("“variables” must be an object of name: value.")
        variables = {}
    reserved = sorted(name for name in variables if str(name).strip().lower() in RESERVED)
    if reserved:
        row.errors.append(f"{', '.join(reserved)} cannot be a variable name; it is a reserved column.")
    _fill(row, {k: v for k, v in variables.items() if k not in reserved})
    _fill(row, {k: v for k, v in record.items() if k in RESERVED})


def _fill(row: CaseRow, record: dict[str, Any]) -> None:
    """Read one case out of a {column: value} record (a CSV row, a flat JSONL object)."""
    for key, value in record.items():
        name = str(key).strip()
        lowered = name.lower()
        if lowered in EXPECTED_NAMES:
            row.expected_output = _cell(row, name, value)
        elif lowered in TURNS_NAMES:
            turns, error = parse_turns(value, plain_text_only=lowered == "input")
            row.turns = turns
            if error:
                row.errors.append(f"{name}: {error}")
        elif not VARIABLE_NAME_RE.fullmatch(name):
            row.errors.append(f"“{name[:80]}” is not a variable name (letters, digits, _ . -).")
        else:
            row.variables[name] = _cell(row, name, value)


def _cell(row: CaseRow, name: str, value: Any) -> str:
    text = as_text(value)
    if len(text) > MAX_CELL_CHARS:
        row.errors.append(f"{name[:80]} is longer than {MAX_CELL_CHARS:,} characters.")
        return ""
    return text


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_turns(value: Any, *, plain_text_only: bool = False) -> tuple[list[dict[str, str]], str]:
    """Turns from a cell or a JSON value: a list of {role, content}, or text for one user turn.

    Returns (turns, error); on an error the turns are empty.
    """
    if value is None or value == "" or value == []:
        return [], ""
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            return [], f"longer than {MAX_CELL_CHARS:,} characters."
        if plain_text_only or not value.lstrip().startswith("["):
            return [{"role": "user", "content": value}], ""
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError) as exc:
            if value.lstrip()[1:].lstrip().startswith("{"):  # `[{...` is meant as a list of turns
                where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
                return [], f"looks like a JSON list of turns but is not valid JSON{where}."
            return [{"role": "user", "content": value}], ""
        if not _looks_like_turns(decoded):
            return [{"role": "user", "content": value}], ""
        value = decoded
    if not isinstance(value, list):
        return [], "must be a list of {role, content} or the text of one user turn."
    if len(value) > MAX_TURNS:
        return [], f"more than {MAX_TURNS} turns."
    turns = []
    for number, turn in enumerate(value, 1):
        if not isinstance(turn, dict) or set(turn) - {"role", "content"}:
            return [], f"turn {number} must be an object with role and content only."
        speaker, content = turn.get("role"), turn.get("content")
        if speaker not in SPEAKERS:
            return [], f"turn {number} has role {str(speaker)[:40]!r}; use one of {', '.join(SPEAKERS)}."
        if not isinstance(content, str):
            return [], f"turn {number} needs text content."
        if len(content) > MAX_CELL_CHARS:
            return [], f"turn {number} is longer than {MAX_CELL_CHARS:,} characters."
        turns.append({"role": speaker, "content": content})
    return turns, ""


def _looks_like_turns(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, dict) and "role" in t for t in value)


def turns_as_text(turns: list[dict[str, str]]) -> str:
    """The cell for some turns: plain text for a single user turn, else JSON; parse_turns reads both."""
    if not turns:
        return ""
    if len(turns) == 1 and turns[0]["role"] == "user":
        text = turns[0]["content"]
        if parse_turns(text) == (turns, ""):
            return text
    return json.dumps(turns, ensure_ascii=False)


def version_warnings(columns: list[str], version_variables: list[str]) -> list[str]:
    """What does not line up between the file's variables and a prompt version's {{variables}}."""
    warnings = []
    missing = [name for name in version_variables if name not in columns]
    unused = [name for name in columns if name not in version_variables]
    if missing:
        warnings.append("The version uses variables the file does not have: " + ", ".join(missing) + ".")
    if unused:
        warnings.append("Columns the version does not use: " + ", ".join(unused) + ".")
    return warnings


# --- export -------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _escape(value: str) -> str:
    if value[:1] in _FORMULA_START or value[:1] == "'":
        return "'" + value
    return value


def _unescape(value: str) -> str:
    if value[:1] == "'" and (value[1:2] in _FORMULA_START or value[1:2] == "'") and value[1:2]:
        return value[1:]
    return value


def csv_lines(variable_names: list[str], cases: Iterable[Any]) -> Iterator[str]:
    """Cases (objects with variables, turns, expected_output) as CSV lines, header first."""
    writer = csv.writer(_Echo())
    yield writer.writerow([*variable_names, "expected_output", "turns"])
    for case in cases:
        cells = [case.variables.get(name, "") for name in variable_names]
        cells += [case.expected_output, turns_as_text(case.turns)]
        yield writer.writerow([_escape(as_text(cell)) for cell in cells])


def jsonl_lines(cases: Iterable[Any]) -> Iterator[str]:
    for case in cases:
        record = {"variables": case.variables, "expected_output": case.expected_output, "turns": case.turns}
        yield json.dumps(record, ensure_ascii=False) + "\n"
