"""Parsing a file's rows in chunks, with a helper process for a big file.

Parsing (the field rules on every cell) costs about as much as resolving and writing the
rows, so for a big file a second process parses the rows after the first chunks while this
one writes what came before (ParserProcess). Any importer's parser can run there: it is a
RowParser, needs no database, and is rebuilt in the helper from its class and `args`.
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import select as _select
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from itertools import islice
from pathlib import Path
from typing import IO, Any, Protocol

from crm import csvfile
from crm.errors import InputUnusable
from crm.imports.report import RowProblem

HELPER_WAIT = 0.0  # seconds to wait for the helper at a chunk boundary (tests wait)
HELPER_FORK = True  # fork the helper where that is safe, rather than start an interpreter
_HELPER_CODE = "from crm.imports.parsing import parser_main; parser_main()"

ProgressFn = Callable[[float], None]


class RowParser(Protocol):
    """Turns a file's rows into an importer's rows, counting and recording refusals."""

    read: int  # rows read
    errors: int  # rows refused
    problems: list[RowProblem]
    sample_limit: int  # the first rows a preview shows; the helper never takes those

    @property
    def args(self) -> tuple[Any, ...]:
        """What the parser's class takes to make the same parser in the helper process."""
        ...

    def parse(self, line: int, cells: list[str] | None, csv_problem: str | None) -> Any: ...

    @staticmethod
    def pack(row: Any) -> tuple[Any, ...]:
        """A row as plain values (marshal can send them)."""
        ...

    @staticmethod
    def unpack(item: tuple[Any, ...]) -> Any: ...


def parsed_chunks(
    parser: RowParser,
    rows: csvfile.CsvRows,
    chunk_rows: int,
    progress: ProgressFn | None,
    size: int,
    helper: ParserProcess | None = None,
) -> Iterator[list[Any]]:
    """The accepted rows of the file, chunk_rows at a time, reporting progress as it goes.

    With a helper, the rows after the first chunk boundary it is ready at are parsed there
    (the same rules, the same chunks): it starts on them before this process resolves and
    writes the chunk it has just parsed, so neither waits for the other at the start.
    """
    items = iter(rows)
    handed = False
    while True:
        if handed and helper is not None:
            start = parser.read
            yield from helper.chunks(parser, progress, size)
            if helper.finished:
                return
            # The helper quit part-way: go on here after the rows it delivered.
            helper = None
            deque(islice(items, parser.read - start), maxlen=0)
        chunk: list[Any] = []
        count = 0
        for line, cells, problem in islice(items, chunk_rows):
            count += 1
            row = parser.parse(line, cells, problem)
            if row is not None:
                chunk.append(row)
        last = count < chunk_rows
        handed = (
            not last
            and helper is not None
            and parser.read >= parser.sample_limit
            and helper.begin(parser.read)
        )
        yield chunk
        if last:
            return
        if progress is not None and size:
            progress(min(0.99, rows.bytes_read / size))


def estimate_rows(read: int, bytes_read: int, size: int) -> int:
    """About how many rows the whole file holds, from how far the first chunk went."""
    if read and bytes_read:
        return int(read * max(1.0, size / bytes_read))
    return size // 100


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the rows pile up (they make no cycles).

    An import holds a chunk of rows - hundreds of thousands of small containers - and the
    collector would walk them again and again; reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the helper process that parses ---------------------------------------------------


def _send(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """One framed message: kind (m: marshal, p: pickle), length, payload."""
    try:
        kind, payload = b"m", marshal.dumps(message)
    except ValueError:  # an exception or other object marshal cannot write
        kind, payload = b"p", pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(kind + len(payload).to_bytes(8, "little"))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, None at the end of the stream."""
    head = stream.read(9)
    if len(head) < 9:
        return None
    length = int.from_bytes(head[1:], "little")
    payload = stream.read(length)
    if len(payload) < length:
        return None
    # Only our own helper process writes to this stream (or reads what we wrote).
    return marshal.loads(payload) if head[:1] == b"m" else pickle.loads(payload)


class ParserProcess:
    """A second process that parses the rows after a given one, a chunk at a time.

    Parsing (the field rules on every cell) costs about as much as resolving and writing
    the rows, so on a machine with a second core the two overlap. The process starts at
    once but needs a moment to import; until it is ready this process parses the first
    chunks itself, then hands over at a chunk boundary (the helper rereads the file up to
    there). The helper never touches the database. If it cannot start, or quits, this
    process parses the rest itself; a file fault it meets (InputUnusable) fails the import
    exactly as it would have here.
    """

    def __init__(
        self, process: subprocess.Popen[bytes] | _Forked, start: tuple[Any, ...], chunk_rows: int
    ) -> None:
        self.process = process
        self.chunk_rows = chunk_rows
        self.start_message = start
        self.is_ready = False
        self.broken = False  # it did not start: this process parses everything
        self.finished = False  # it sent every chunk

    @classmethod
    def start(
        cls, source: bytes | Path, shape: csvfile.FileShape, parser: RowParser, chunk_rows: int
    ) -> ParserProcess | None:
        if os.name != "posix" or not sys.executable:
            return None  # select() on pipes, below, is POSIX only
        shape_fields = (shape.encoding, shape.delimiter, shape.header_line, tuple(shape.headers))
        where = bytes(source) if isinstance(source, bytes | bytearray) else str(source)
        start = (where, shape_fields, type(parser), parser.args)
        if HELPER_FORK and sys.platform.startswith("linux") and threading.active_count() == 1:
            # A copy of this process is ready at once; with other threads about (a web
            # server) a fork is not safe, so a fresh interpreter is started instead.
            try:
                return cls(_Forked(), start, chunk_rows)
            except OSError:
                return None
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _HELPER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=root,
            )
        except OSError:
            return None
        return cls(process, start, chunk_rows)

    def begin(self, start: int) -> bool:
        """Hand the rows from `start` on to the helper, if it has started (waiting at most
        HELPER_WAIT seconds for that); False leaves them to this process."""
        if self.broken:
            return False
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        if not self.is_ready:
            if not _select.select([stdout], [], [], HELPER_WAIT)[0]:
                return False
            if _receive(stdout) != ("ready",):
                self.broken = True
                return False
            self.is_ready = True
        try:
            _send(stdin, ("start", *self.start_message, start, self.chunk_rows))
            stdin.close()
        except OSError:
            self.broken = True
            return False
        return True

    def chunks(
        self, parser: RowParser, progress: ProgressFn | None, size: int
    ) -> Iterator[list[Any]]:
        """The chunks from the parser's position on; counts and refusals go to `parser`.

        Stops early (finished False) if the helper quits; the caller carries on.
        """
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            message = _receive(stdout)
            if message is None or message[0] == "failed":
                return
            if message[0] == "unusable":
                raise InputUnusable(message[1])
            if message[0] == "done":
                self.finished = True
                return
            _kind, items, read, errors, problems, bytes_read = message
            parser.read += read
            parser.errors += errors
            parser.problems.extend(RowProblem(*problem) for problem in problems)
            yield [parser.unpack(item) for item in items]
            if read == self.chunk_rows and progress is not None and size:
                progress(min(0.99, bytes_read / size))

    def close(self) -> None:
        process = self.process
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        if process.poll() is None:
            process.kill()
        process.wait()


class _Forked:
    """A forked copy of this process running parser_main, with Popen's few methods."""

    def __init__(self) -> None:
        to_child, from_parent = os.pipe()
        from_child, to_parent = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: it never returns, and leaves all it inherited alone
            try:
                os.close(from_parent)
                os.close(from_child)
                with open(to_child, "rb") as inp, open(to_parent, "wb") as out:
                    parser_main(inp, out)
            finally:
                os._exit(0)
        os.close(to_child)
        os.close(to_parent)
        self.pid = pid
        self.stdin: IO[bytes] | None = open(from_parent, "wb")  # noqa: SIM115
        self.stdout: IO[bytes] | None = open(from_child, "rb")  # noqa: SIM115
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int | None:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def parser_main(inp: IO[bytes] | None = None, out: IO[bytes] | None = None) -> None:
    """The helper process (see ParserProcess): parse and send chunks until the file ends."""
    gc.disable()
    if inp is None or out is None:  # a process of its own: the messages are on stdin/out
        inp, out = sys.stdin.buffer, sys.stdout.buffer
        sys.stdout = sys.stderr  # nothing else may write to the messages' stream
    try:
        _send(out, ("ready",))
        message = _receive(inp)
        if message is None:
            return
        _kind, where, shape_fields, parser_class, args, skip, chunk_rows = message
        source = where if isinstance(where, bytes) else Path(where)
        shape = csvfile.FileShape(*shape_fields, None)
        parser = parser_class(*args)
        try:
            with csvfile.CsvRows(source, shape) as rows:
                rows.read_header()
                items = iter(rows)
                deque(islice(items, skip), maxlen=0)
                while True:
                    chunk = []
                    for line, cells, problem in islice(items, chunk_rows):
                        row = parser.parse(line, cells, problem)
                        if row is not None:
                            chunk.append(parser.pack(row))
                    problems = [(p.line, p.column, p.problem) for p in parser.problems]
                    message = ("chunk", chunk, parser.read, parser.errors, problems)
                    _send(out, (*message, rows.bytes_read))
                    if parser.read < chunk_rows:
                        break
                    parser.read = parser.errors = 0
                    parser.problems = []
        except InputUnusable as error:
            _send(out, ("unusable", str(error)))
            return
        except Exception as error:  # the main process parses the rest itself
            _send(out, ("failed", repr(error)))
            return
        _send(out, ("done",))
    except OSError:  # the main process went away
        return
