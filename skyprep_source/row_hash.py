"""The `_row_hash` row version: a deterministic 64-bit content hash of each row of a table.

scd2 compares it with the current row's to decide whether a record changed, so it must give
the same number for the same content in every run and process, and a different one when any
value changes. It is computed column by column with numpy over the Arrow buffers (no per-row
Python, no pandas):

- a value is read as the bytes of its Arrow layout (int64, timestamp(us), float64 bits,
  decimal128, bools, UTF-8 text), so the hash depends on the Arrow columnar format (a
  versioned spec) and on our own typing in `normalize`, not on any library's hash function:
  pandas', DuckDB's or Python's (salted) `hash()` may change between versions or processes.
  The price: it is tied to the column types. A field that changes type (an extra field read
  as int, later as float) or a change of the hash itself versions every row once;
- each column's value hashes are keyed by the column's name and *added* across columns, so
  the column order does not matter, and a null adds nothing: a field that starts to arrive
  (as null) or a new nullable column leaves every existing hash unchanged;
- the mixing function is SplitMix64's finalizer (a bijection of 64-bit words), so two rows
  that differ in a single fixed-width value always differ; other collisions are 2**-64 events.
Not a cryptographic hash: it detects changes, it does not resist forgery.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["add_row_hash", "row_hashes"]

_U64 = np.uint64
_MIX_1 = _U64(0xBF58476D1CE4E5B9)
_MIX_2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
# _KEEP_BYTES[n]: the low n bytes of a little-endian word (the bytes of a row's last word)
_KEEP_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=_U64)
_EIGHT_ZEROS = np.zeros(8, dtype=np.uint8)


def row_hashes(table: pa.Table) -> pa.Array:
    """The content hash of every row of `table`, as a non-null int64 array."""
    total = np.zeros(table.num_rows, dtype=_U64)
    for name, column in zip(table.column_names, table.columns, strict=True):
        array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        total += _column_hashes(array, _name_key(name))  # wraps mod 2**64: order-free sum
    return pa.array(_mix(total).view(np.int64), pa.int64())


def add_row_hash(table: pa.Table, column_name: str) -> pa.Table:
    """`table` with its rows' content hashes appended as a non-null BIGINT `column_name`."""
    return table.append_column(pa.field(column_name, pa.int64(), nullable=False), row_hashes(table))


def _name_key(name: str) -> np.uint64:
    return _U64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little"))


def _mix(words: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer over an array of uint64 (wrapping arithmetic)."""
    words = (words ^ (words >> _U64(30))) * _MIX_1
    words = (words ^ (words >> _U64(27))) * _MIX_2
    return words ^ (words >> _U64(31))


def _column_hashes(array: pa.Array, key: np.uint64) -> np.ndarray:
    """Each row's contribution of one column: 0 for a null, else a hash of value and name."""
    count = len(array)
    if array.null_count == count:
        return np.zeros(count, dtype=_U64)
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_boolean(kind):
        words = pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(_U64)
    elif any(
        check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    ) or pa.types.is_large_binary(kind):
        words = _text_words(array)
    elif kind.bit_width % 8 == 0 and not pa.types.is_nested(kind):
        words = _fixed_width_words(array)
    else:
        # nested values (not produced by normalize): their JSON-like text stands for them
        words = _text_words(pc.cast(array, pa.string()))
    hashed = _mix(_mix(words + key) ^ key)
    if array.null_count:
        hashed[~array.is_valid().to_numpy(zero_copy_only=False)] = 0
    return hashed


def _fixed_width_words(array: pa.Array) -> np.ndarray:
    """One uint64 per row from a fixed-width value's bytes (1 to 8 bytes, or 16 for decimals)."""
    width = array.type.bit_width // 8
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset * width
    raw = data[start : start + len(array) * width].reshape(len(array), width)
    if width % 8:
        padded = np.zeros((len(array), 8), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    words = np.ascontiguousarray(raw).view(_U64)
    result = words[:, 0].copy()
    for i in range(1, words.shape[1]):  # decimal128: chain the high word in
        result = _mix(result) + words[:, i]
    return result


def _text_words(array: pa.Array) -> np.ndarray:
    """One uint64 per row of variable-length bytes: each row's bytes zero-padded to whole
    8-byte words, each word mixed with its place in the row, summed, then the length mixed in
    (so padding, reordered words and shifted bytes all give another word)."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[array.offset : array.offset + count + 1].astype(np.int64)
    lengths = np.diff(offsets)
    if array.null_count:
        lengths[~array.is_valid().to_numpy(zero_copy_only=False)] = 0  # a null slot may hold bytes
    word_counts = (lengths + 7) // 8
    terms = _text_terms(array, offsets, lengths, word_counts)
    return _mix(terms + lengths.astype(_U64) * _GOLDEN)


def _word_terms(words: np.ndarray, places: np.ndarray) -> np.ndarray:
    return _mix(words + places.astype(_U64) * _GOLDEN)


def _text_terms(
    array: pa.Array, offsets: np.ndarray, lengths: np.ndarray, word_counts: np.ndarray
) -> np.ndarray:
    """Per row, the sum of its words' terms. A row's words are read in place, 8 bytes at a
    time from its start (a strided view of the data buffer: no per-byte work), the last one
    with the bytes past the row's end masked to zero."""
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    data = np.concatenate((data[: int(offsets[-1]) if len(offsets) else 0], _EIGHT_ZEROS))
    words_at = np.ndarray(shape=(data.size - 7,), dtype="<u8", buffer=data, strides=(1,))
    word_ends = np.cumsum(word_counts)
    word_starts = word_ends - word_counts
    places = np.arange(int(word_ends[-1]) if len(word_ends) else 0) - np.repeat(
        word_starts, word_counts
    )
    firsts = np.repeat(offsets[:-1], word_counts) + 8 * places
    left = np.minimum(np.repeat(lengths, word_counts) - 8 * places, 8)
    words = words_at[firsts] & _KEEP_BYTES[left]
    terms = _word_terms(words.astype(_U64, copy=False), places)
    cumulative = np.zeros(terms.size + 1, dtype=_U64)
    np.cumsum(terms, out=cumulative[1:])
    return cumulative[word_ends] - cumulative[word_starts]
