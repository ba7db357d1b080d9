"""CSV as people export it, cut into pieces Arrow can parse on their own: at record ends, never inside quotes.

Also the byte stream the pieces come from (``SourceText``): the file's declared encoding transcoded to UTF-8,
a byte order mark dropped, NUL bytes and bytes the encoding cannot decode refused, naming the line and the
byte offset in the file. Positions are found again by re-reading the file only when something is wrong, so
the common case pays for neither line counting nor a second decoding.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

QUOTE, LF, CR = ord('"'), ord("\n"), ord("\r")
UTF8_BOM = codecs.BOM_UTF8
# How many quoted fields holding newlines the vectorised cut steps back over before lexing the piece exactly.
MAX_BACKTRACK = 64
LOCATE_CHUNK = 16 << 20


class CsvDataError(ValueError):
    """Bytes a CSV file may not hold, or a quote that never closes; the message names file, line and offset."""


def text_codec(encoding: str) -> codecs.CodecInfo:
    """The codec of a text encoding; ValueError for unknown names and for bytes-to-bytes codecs.

    ``zlib``, ``bz2``, ``base64`` and friends are codecs too: a tenant's file "decoded" with one of them
    could expand without bound, so only codecs that turn bytes into text are encodings here.
    """
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r} (utf-8, latin-1, cp1252, utf-16...)") from None
    if not getattr(codec, "_is_text_encoding", True):
        raise ValueError(f"{encoding!r} is not a text encoding (utf-8, latin-1, cp1252, utf-16...)")
    return codec


def record_end(data: bytes, delimiter: int) -> int:
    """The offset just past the last record of ``data`` that ends in a newline outside quotes (0: none).

    ``data`` starts at a record boundary. Without quotes every newline ends a record; with quotes, see
    ``Quotes``.
    """
    newline = data.rfind(b"\n")
    if newline < 0:
        newline = data.rfind(b"\r")  # classic Mac line ends
        if newline < 0:
            return 0
    if data.find(b'"') < 0:
        return newline + 1
    return Quotes(data, delimiter).record_end(len(data))


def split_records(data: bytes, delimiter: int, count: int) -> list[tuple[int, int]]:
    """``data`` (whole records) cut into about ``count`` runs of whole records, as (start, end) offsets."""
    size = len(data)
    quotes = Quotes(data, delimiter) if data.find(b'"') >= 0 else None
    cuts = [0]
    for part in range(1, count):
        limit = size * part // count
        if quotes is None:
            newline = _last_newline(data, cuts[-1], limit)
            end = newline + 1 if newline >= 0 else 0
        else:
            end = quotes.record_end(limit)
        if end > cuts[-1]:
            cuts.append(end)
    if cuts[-1] < size:
        cuts.append(size)
    return list(itertools.pairwise(cuts))


def open_quote(data: bytes, delimiter: int) -> int | None:
    """The offset of the quote whose field is still open at the end of ``data``, or None."""
    if data.find(b'"') < 0:
        return None
    return Quotes(data, delimiter).open_at_end()


class Quotes:
    """Where the quoted fields of ``data`` (which starts at a record boundary) are, as Arrow's lexer sees them.

    The parity of the quotes before a newline says whether it is inside a quoted field, provided every quote
    parity calls opening stands where Arrow's lexer opens a field (after a delimiter, a line end, or an
    escaping quote): that is checked at once over all quotes (vectorised). A quote elsewhere (``5" pipe`` in an
    unquoted field) is a literal character to Arrow, and then the fields are lexed quote by quote instead.
    """

    def __init__(self, data: bytes, delimiter: int) -> None:
        self.data = data
        self.delimiter = delimiter
        self.positions = _quote_positions(data)
        self.fields = (
            None if _parity_is_exact(data, self.positions, delimiter) else _lex_quotes(data, delimiter)
        )

    def record_end(self, limit: int) -> int:
        """The offset just past the last newline outside quotes before ``limit`` (0: none)."""
        if self.fields is not None:
            return self._lexed_record_end(limit)
        newline = _last_newline(self.data, 0, limit)
        for _ in range(MAX_BACKTRACK):
            if newline < 0:
                return 0
            before = pc.sum(pc.less(self.positions, newline)).as_py() or 0
            if before % 2 == 0:
                return newline + 1
            opening = self.positions[before - 1].as_py()  # the quote that opened the field holding it
            newline = _last_newline(self.data, 0, opening)
        self.fields = _lex_quotes(self.data, self.delimiter)  # many multi-line fields in a row: lex once
        return self._lexed_record_end(limit)

    def _lexed_record_end(self, limit: int) -> int:
        end = limit
        for opening, closing in reversed(self.fields or []):
            if opening >= limit:
                continue
            if closing is not None and closing < limit:
                newline = _last_newline(self.data, closing + 1, end)
                if newline >= 0:
                    return newline + 1
            end = opening
        newline = _last_newline(self.data, 0, end)
        return newline + 1 if newline >= 0 else 0

    def open_at_end(self) -> int | None:
        if self.fields is None:
            count = len(self.positions)
            return self.positions[count - 1].as_py() if count % 2 else None
        return self.fields[-1][0] if self.fields and self.fields[-1][1] is None else None


def _bytes_array(data: bytes) -> pa.Array:
    return pa.Array.from_buffers(pa.uint8(), len(data), [None, pa.py_buffer(data)])


def _quote_positions(data: bytes) -> pa.Array:
    return pc.indices_nonzero(pc.equal(_bytes_array(data), pa.scalar(QUOTE, pa.uint8())))


def _parity_is_exact(data: bytes, quotes: pa.Array, delimiter: int) -> bool:
    """Whether every quote at an even position (parity: opening) follows a delimiter, line end or quote."""
    count = len(quotes)
    if not count:
        return True
    previous = pc.take(_bytes_array(data), pc.max_element_wise(pc.subtract(quotes, 1), 0))
    allowed = pa.array([delimiter, LF, CR, QUOTE], pa.uint8())
    fits = pc.or_(pc.is_in(previous, value_set=allowed), pc.equal(quotes, 0))
    ordinal = pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count))  # 1, 2, 3...
    opening = pc.equal(pc.bit_wise_and(ordinal, 1), 1)
    return not pc.any(pc.and_(opening, pc.invert(fits))).as_py()


def _lex_quotes(data: bytes, delimiter: int) -> list[tuple[int, int | None]]:
    """Quoted fields of ``data`` as (opening, closing) offsets, as Arrow's lexer reads them (None: still open).

    A quote opens a field only at the field's start; inside, a doubled quote is a literal quote, a single one
    closes the field; anywhere else a quote is a literal character.
    """
    positions = _quote_positions(data).to_pylist()
    fields: list[tuple[int, int | None]] = []
    index, count = 0, len(positions)
    starts = (delimiter, LF, CR)
    while index < count:
        position = positions[index]
        if position == 0 or data[position - 1] in starts:
            index += 1
            while index < count:  # find the closing quote
                inner = positions[index]
                if index + 1 < count and positions[index + 1] == inner + 1:
                    index += 2  # a doubled quote
                    continue
                break
            if index >= count:
                fields.append((position, None))
                break
            fields.append((position, positions[index]))
        index += 1
    return fields


def _last_newline(data: bytes, start: int, end: int) -> int:
    return max(data.rfind(b"\n", start, end), data.rfind(b"\r", start, end))


class SourceText:
    """A file's bytes as UTF-8, read in chunks: transcoded from ``encoding``, BOM dropped, NULs refused.

    ``reopen`` gives the raw file again from its start (or None when it cannot be re-read): it is used only
    to turn an offset into a line number when something is wrong.
    """

    def __init__(
        self,
        handle: BinaryIO,
        encoding: str,
        label: str,
        reopen: Callable[[], BinaryIO | None],
        chunk_size: int,
    ) -> None:
        try:
            self.codec = text_codec(encoding)
        except ValueError as exc:
            raise CsvDataError(f"{label}: {exc}") from None
        self.handle = handle
        self.label = label
        self.reopen = reopen
        self.chunk_size = chunk_size
        self.passthrough = self.codec.name in ("utf-8", "utf-8-sig")
        self.decoder = None if self.passthrough else self.codec.incrementaldecoder("strict")
        self.raw_read = 0  # raw bytes consumed so far
        self.text_raw = 0  # raw offset where the text not yet decoded begins (transcoding)
        self.bom = 0  # raw bytes of a byte order mark at the start
        self.started = False
        self.pending = b""  # transcoded bytes not yet handed out

    # ------------------------------------------------------------ reading
    def fill(self, carry: bytes | bytearray, size: int) -> tuple[bytearray, int]:
        """``carry`` followed by up to ``size`` more UTF-8 bytes in one new buffer, and how many came (0: end).

        One buffer, filled in place: no second copy of a piece while it is read.
        """
        if not self.passthrough:
            while len(self.pending) < size:
                raw = self.handle.read(self.chunk_size)
                self.pending += self._decode(raw, final=not raw).encode("utf-8")
                if not raw:
                    break
            data, self.pending = self.pending, b""
            return bytearray(carry) + data, len(data)
        buffer = bytearray(len(carry) + size)
        buffer[: len(carry)] = carry
        got = 0
        with memoryview(buffer) as view:
            while got < size:
                count = self.handle.readinto(view[len(carry) + got :])
                if not count:
                    break
                got += count
        del buffer[len(carry) + got :]
        start = self.raw_read - self.bom  # UTF-8 offset of the new bytes
        self.raw_read += got
        if not self.started and got:
            self.started = True
            if buffer.startswith(UTF8_BOM):
                del buffer[: len(UTF8_BOM)]
                self.bom = len(UTF8_BOM)
                got -= self.bom
        nul = buffer.find(b"\x00", len(carry))
        if nul >= 0:
            raise self._nul_error(start + self.bom + nul - len(carry))
        return buffer, got

    def _decode(self, raw: bytes, *, final: bool) -> str:
        buffered = self.decoder.getstate()[0]
        if not self.started:
            self.text_raw = self.bom = bom_length(raw, self.codec.name)
        try:
            text = self.decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            offset = self.raw_read - len(buffered) + exc.start
            bad = exc.object[exc.start : exc.end].hex(" ")
            raise CsvDataError(
                f"{self.label}: bytes {bad} are not valid {self.codec.name} at line "
                f"{self.line_of_raw(offset)}, byte offset {offset}: {exc.reason}; declare the file's "
                "'encoding'"
            ) from None
        finally:
            self.raw_read += len(raw)
        if not self.started:
            self.started = True
            text = text.removeprefix("\ufeff")
        nul = text.find("\x00")
        if nul >= 0:
            raise self._nul_error(self.text_raw + self._raw_length(text[:nul]))
        self.text_raw += self._raw_length(text)
        return text

    def _raw_length(self, text: str) -> int:
        encoded = len(text.encode(self.codec.name, errors="replace"))
        # The generic UTF-16/32 codecs write a byte order mark on every encode: it is not in the data.
        return encoded - {"utf-16": 2, "utf-32": 4}.get(self.codec.name, 0) if text else 0

    def _nul_error(self, offset: int) -> CsvDataError:
        wide = self.codec.name.startswith(("utf-16", "utf-32"))
        hint = "" if wide else " (a UTF-16 file? declare its 'encoding')"
        return CsvDataError(
            f"{self.label}: NUL byte at line {self.line_of_raw(offset)}, byte offset {offset}: CSV files may "
            f"not hold NUL characters{hint}"
        )

    # ------------------------------------------------------------ positions, found again on error
    def line_of_raw(self, offset: int) -> int | str:
        """The 1-based line of a raw byte offset, or '?' when the file cannot be read again."""
        handle = self.reopen()
        if handle is None:
            return "?"
        decoder = None if self.passthrough else self.codec.incrementaldecoder("replace")
        lines, left = 1, offset
        with handle:
            while left > 0:
                raw = handle.read(min(LOCATE_CHUNK, left))
                if not raw:
                    break
                left -= len(raw)
                lines += raw.count(b"\n") if decoder is None else decoder.decode(raw).count("\n")
        return lines

    def raw_of_utf8(self, offset: int) -> int | None:
        """The raw byte offset of a UTF-8 offset of this stream (None when the file cannot be read again)."""
        if self.passthrough:
            return offset + self.bom
        handle = self.reopen()
        if handle is None:
            return None
        decoder = self.codec.incrementaldecoder("replace")
        produced, position, first = 0, 0, True
        with handle:
            while raw := handle.read(LOCATE_CHUNK):
                text = decoder.decode(raw)
                if first:
                    first, position = False, bom_length(raw, self.codec.name)
                    text = text.removeprefix("\ufeff")
                encoded = text.encode("utf-8")
                if produced + len(encoded) >= offset:
                    prefix = encoded[: offset - produced].decode("utf-8", errors="ignore")
                    return position + self._raw_length(prefix)
                produced += len(encoded)
                position += self._raw_length(text)
        return position

    def position(self, utf8_offset: int) -> str:
        """'line L, byte offset B' of a UTF-8 offset of this stream."""
        raw = self.raw_of_utf8(utf8_offset)
        if raw is None:
            return f"byte {utf8_offset} of the decoded text"
        return f"line {self.line_of_raw(raw)}, byte offset {raw}"


def bom_length(raw: bytes, codec_name: str) -> int:
    """Bytes of a byte order mark of the codec's family at the start of ``raw``."""
    if codec_name.startswith("utf-32"):
        marks = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    elif codec_name.startswith("utf-16"):
        marks = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    elif codec_name.startswith("utf-8"):
        marks = (UTF8_BOM,)
    else:
        return 0
    return next((len(mark) for mark in marks if raw.startswith(mark)), 0)
