"""Turn Python values into the bytes stored in Redis, and back.

A :class:`Codec` combines a serializer (json, pickle, msgpack), an optional compressor (zlib,
zstd, lz4) and optional HMAC-SHA256 signing::

    codec = Codec(serializer="json", compressor="zstd", signing_keys=[new_key, old_key])
    raw = codec.encode({"user": 42})        # bytes for SET
    value = codec.decode(raw)               # {'user': 42}

Stored format
-------------

An exact ``int`` (``type(value) is int``, so not ``bool``) is stored as its plain ASCII
decimal, ``b"42"`` or ``b"-7"``, with no header, so ``INCR``/``DECR`` work on it and their
results read back as ``int``. Integers are never signed or compressed. Every other value is
one header byte followed by the body::

    unsigned:  header | body
    signed:    header | HMAC-SHA256(key, header + body) (32 bytes) | body

The header byte::

    bit     7       6          5 4 3            2 1 0
         +-----+---------+---------------+---------------+
         |  1  | signed  | serializer id | compressor id |
         +-----+---------+---------------+---------------+

    header = 0x80 | signed << 6 | serializer_id << 3 | compressor_id

Bit 7 is always set, so a header (0x80-0xFF) is never an ASCII digit or ``-``: the first
byte alone tells a bare integer from a headed payload.

=====  ===========================  =====  ===========================
id     serializer                   id     compressor
=====  ===========================  =====  ===========================
0      raw ``bytes``                0      none
1      json                         1      zlib
2      pickle                       2      zstd
3      msgpack                      3      lz4
4      ``str`` as UTF-8             4-7    custom :class:`Compressor`
5-7    custom :class:`Serializer`
=====  ===========================  =====  ===========================

A value whose type is exactly ``bytes`` is always stored raw (id 0) and one whose type is
exactly ``str`` is stored as UTF-8 (id 4, ``surrogatepass``, so every ``str`` round trips),
whatever the serializer: they skip serialization and read back with their type. Subclasses
of ``bytes``, ``str`` and ``int`` go through the serializer like any other value.

The body is compressed only when the serialized value is at least ``compress_min_size``
bytes long *and* compression makes it smaller; the compressor id says which was done.

Decoding and security
---------------------

:meth:`Codec.decode` reads every format above, whatever the codec is configured to write, so
settings can change without breaking stored data: a json+zstd codec reads a zlib-compressed
msgpack value, a signed one or an unsigned one. The exceptions guard against code execution
through pickle, since whoever can write to Redis could otherwise run code in the app:

- a pickle payload is unpickled only if the codec accepts pickle (``accept_pickle``);
- a codec with signing keys refuses unsigned pickle payloads;
- a signed payload is verified against every key, before any decompression or
  unpickling; a bad signature, or a signed payload read by a codec without keys, is refused.

Signing keys should be dedicated random secrets (32 bytes or more), not reused elsewhere.
Unsigned non-pickle payloads are accepted even by a signing codec: signing protects against
unpickling forged data, not against a writer changing json or integer values.

Every refusal and every malformed payload raises :class:`~rcache.errors.DecodeError`; an
unserializable value raises :class:`~rcache.errors.EncodeError`. Neither message contains the
value or the payload. This module never imports ``redis``.
"""

from __future__ import annotations

import hmac
import importlib
import json
import pickle
import threading
import zlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar

from rcache.errors import ConfigurationError, DecodeError, EncodeError

__all__ = [
    "Codec",
    "Compressor",
    "JSONSerializer",
    "LZ4Compressor",
    "MsgpackSerializer",
    "PickleSerializer",
    "Serializer",
    "ZlibCompressor",
    "ZstdCompressor",
]

_T = TypeVar("_T")
_Handler = Callable[[bytes], Any]

_HEADER_BIT = 0x80
_SIGNED_BIT = 0x40
_MAC_SIZE = 32  # bytes in an HMAC-SHA256 digest
_SIGNED_BODY_START = 1 + _MAC_SIZE

_RAW_BYTES_ID = 0
_JSON_ID = 1
_PICKLE_ID = 2
_MSGPACK_ID = 3
_UTF8_STR_ID = 4
_RESERVED_SERIALIZER_IDS = frozenset({_RAW_BYTES_ID, _UTF8_STR_ID})
_MAX_ID = 7  # serializer and compressor ids each have three bits


class Serializer(Protocol):
    """Turn values into bytes and back; ``id`` (1-7, not 4) goes into the header byte.

    ``dumps`` raises :class:`~rcache.errors.EncodeError` for a value it cannot serialize and
    ``loads`` raises :class:`~rcache.errors.DecodeError` for bytes it cannot read. Id 2 is
    treated as pickle by :class:`Codec`'s security rules, whatever the serializer.
    """

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class Compressor(Protocol):
    """Compress bytes and back; ``id`` (1-7) goes into the header byte.

    ``decompress`` raises :class:`~rcache.errors.DecodeError` for bytes it cannot read.
    """

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


def _type_name(obj: object) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_optional(module: str, what: str, install: str) -> ModuleType:
    """Import ``module`` or raise ConfigurationError saying what needs it and how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {what} needs the {module!r} module, which is not installed "
            f"(pip install {install})"
        ) from exc


def _check_level(level: object, low: int, high: int, what: str) -> int:
    """Return ``level`` if it is an int in ``[low, high]``, else raise ConfigurationError."""
    if type(level) is not int or not low <= level <= high:
        raise ConfigurationError(f"{what} must be an int from {low} to {high}, got {level!r}")
    return level


class JSONSerializer:
    """JSON, compact and UTF-8 (non-ASCII characters are not escaped).

    JSON has no tuples, sets or bytes and only ``str`` object keys: tuples read back as
    lists, int/float/bool/None keys as strings, and sets or bytes raise EncodeError.
    """

    id = _JSON_ID
    name = "json"

    __slots__ = ("_decode", "_encode")

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._decode = json.JSONDecoder().decode

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` as JSON; raise EncodeError if it is not JSON-compatible."""
        try:
            return self._encode(obj).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as exc:
            raise EncodeError(
                f"cannot serialize a value of type {_type_name(obj)} as json ({type(exc).__name__})"
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Deserialize JSON ``data``; raise DecodeError if it is not valid UTF-8 JSON."""
        try:
            return self._decode(data.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise DecodeError(f"invalid json payload ({type(exc).__name__})") from exc


class PickleSerializer:
    """Pickle: any picklable Python value, types preserved.

    Unpickling runs code chosen by whoever wrote the bytes. Only :class:`Codec` enforces the
    signing rules; never call :meth:`loads` on bytes that were not verified. The default
    protocol is the newest this Python knows, which older Pythons may not read.
    """

    id = _PICKLE_ID
    name = "pickle"

    __slots__ = ("protocol",)

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = _check_level(protocol, 0, pickle.HIGHEST_PROTOCOL, "pickle protocol")

    def dumps(self, obj: Any) -> bytes:
        """Pickle ``obj``; raise EncodeError if it cannot be pickled."""
        try:
            return pickle.dumps(obj, self.protocol)
        # Pickling calls __reduce__, __getstate__ and copyreg hooks of arbitrary classes, so
        # any exception type can come out; catching Exception is deliberate here.
        except Exception as exc:
            raise EncodeError(
                f"cannot serialize a value of type {_type_name(obj)} with pickle "
                f"({type(exc).__name__})"
            ) from exc

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``; raise DecodeError if it is not a readable pickle."""
        try:
            return pickle.loads(data)
        # Unpickling imports modules and calls constructors named by the payload, so any
        # exception type can come out; catching Exception is deliberate here.
        except Exception as exc:
            raise DecodeError(f"invalid pickle payload ({type(exc).__name__})") from exc


class MsgpackSerializer:
    """MessagePack (optional ``msgpack`` package): compact, bytes and str kept apart.

    Tuples read back as lists; dict keys may be any hashable msgpack type, but a tuple key
    reads back as a list and so cannot be decoded. Integers must fit in 64 bits.
    """

    id = _MSGPACK_ID
    name = "msgpack"

    __slots__ = ("_packb", "_unpack_errors", "_unpackb")

    def __init__(self) -> None:
        msgpack = _import_optional("msgpack", "msgpack serializer", "'rcache[msgpack]'")
        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb
        # FormatError, StackError and ExtraData are ValueErrors; OutOfData and BufferFull
        # only share UnpackException; an unhashable map key raises TypeError.
        self._unpack_errors: tuple[type[Exception], ...] = (
            msgpack.UnpackException,
            ValueError,
            TypeError,
        )

    def dumps(self, obj: Any) -> bytes:
        """Pack ``obj``; raise EncodeError if msgpack cannot represent it."""
        try:
            data: bytes = self._packb(obj, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"cannot serialize a value of type {_type_name(obj)} with msgpack "
                f"({type(exc).__name__})"
            ) from exc
        return data

    def loads(self, data: bytes) -> Any:
        """Unpack ``data``; raise DecodeError if it is not one complete msgpack value."""
        try:
            return self._unpackb(data, raw=False, strict_map_key=False)
        except self._unpack_errors as exc:
            raise DecodeError(f"invalid msgpack payload ({type(exc).__name__})") from exc


class ZlibCompressor:
    """zlib (standard library); ``level`` from -1 (zlib's default) to 9 (smallest)."""

    id = 1
    name = "zlib"

    __slots__ = ("level",)

    def __init__(self, level: int = 6) -> None:
        self.level = _check_level(level, -1, 9, "zlib level")

    def compress(self, data: bytes) -> bytes:
        """Compress ``data``."""
        return zlib.compress(data, self.level)

    def decompress(self, data: bytes) -> bytes:
        """Decompress ``data``; raise DecodeError if it is not a complete zlib stream."""
        try:
            return zlib.decompress(data)
        except zlib.error as exc:
            raise DecodeError("invalid zlib payload") from exc


class ZstdCompressor:
    """Zstandard (optional ``zstandard`` package); ``level`` up to 22, negative for speed.

    ``max_output_size`` (bytes): a frame that declares a larger decompressed size is refused
    before any memory is allocated for it, so a tiny forged frame cannot claim gigabytes.
    """

    id = 2
    name = "zstd"

    __slots__ = ("_local", "_zstd", "level", "max_output_size")

    def __init__(self, level: int = 3, *, max_output_size: int = 512 * 1024 * 1024) -> None:
        self._zstd = _import_optional("zstandard", "zstd compressor", "'rcache[zstd]'")
        self.level = _check_level(level, -(1 << 17), 22, "zstd level")
        self.max_output_size = _check_level(max_output_size, 0, 1 << 62, "max_output_size")
        # zstandard's compressor and decompressor objects must not be shared between
        # threads, so each thread gets its own, created on first use.
        self._local = threading.local()

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into one frame that records its content size."""
        local = self._local
        try:
            cctx = local.cctx
        except AttributeError:
            cctx = local.cctx = self._zstd.ZstdCompressor(level=self.level)
        out: bytes = cctx.compress(data)
        return out

    def decompress(self, data: bytes) -> bytes:
        """Decompress one frame; raise DecodeError if it is corrupt, truncated or too big."""
        local = self._local
        try:
            dctx = local.dctx
        except AttributeError:
            dctx = local.dctx = self._zstd.ZstdDecompressor()
        try:
            # -1 (size not recorded) makes decompress() fail below: rcache frames record it.
            if self._zstd.frame_content_size(data) > self.max_output_size:
                raise DecodeError(
                    f"zstd payload declares more than max_output_size "
                    f"({self.max_output_size}) bytes"
                )
            out: bytes = dctx.decompress(data)
        except self._zstd.ZstdError as exc:
            raise DecodeError("invalid zstd payload") from exc
        return out


class LZ4Compressor:
    """LZ4 frames (optional ``lz4`` package); ``level`` 0 (fastest) to 16."""

    id = 3
    name = "lz4"

    __slots__ = ("_frame", "level")

    def __init__(self, level: int = 0) -> None:
        self._frame = _import_optional("lz4.frame", "lz4 compressor", "lz4")
        self.level = _check_level(level, 0, 16, "lz4 level")

    def compress(self, data: bytes) -> bytes:
        """Compress ``data`` into one LZ4 frame."""
        out: bytes = self._frame.compress(data, compression_level=self.level)
        return out

    def decompress(self, data: bytes) -> bytes:
        """Decompress one LZ4 frame; raise DecodeError if it is corrupt or truncated."""
        try:
            out: bytes = self._frame.decompress(data)
        except (RuntimeError, ValueError) as exc:  # lz4.frame reports bad input as these
            raise DecodeError("invalid lz4 payload") from exc
        return out


_SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    "json": JSONSerializer,
    "msgpack": MsgpackSerializer,
    "pickle": PickleSerializer,
}
_COMPRESSORS: dict[str, Callable[[], Compressor]] = {
    "lz4": LZ4Compressor,
    "zlib": ZlibCompressor,
    "zstd": ZstdCompressor,
}


def _names(table: dict[str, Any]) -> str:
    return ", ".join(repr(name) for name in sorted(table))


def _resolve_serializer(serializer: str | Serializer) -> Serializer:
    """Return the serializer named by ``serializer``, or check and return a Serializer."""
    if isinstance(serializer, str):
        factory = _SERIALIZERS.get(serializer)
        if factory is None:
            raise ConfigurationError(
                f"unknown serializer {serializer!r}; valid: {_names(_SERIALIZERS)}"
            )
        return factory()
    ident = getattr(serializer, "id", None)
    if not (
        type(ident) is int
        and isinstance(getattr(serializer, "name", None), str)
        and callable(getattr(serializer, "dumps", None))
        and callable(getattr(serializer, "loads", None))
    ):
        raise ConfigurationError(
            f"serializer must be one of {_names(_SERIALIZERS)} or an object with id, name, "
            f"dumps and loads, got {_type_name(serializer)}"
        )
    if not 1 <= ident <= _MAX_ID or ident in _RESERVED_SERIALIZER_IDS:
        raise ConfigurationError(
            f"serializer id must be 1-{_MAX_ID} and not {_UTF8_STR_ID} (used for str), got {ident}"
        )
    return serializer


def _resolve_compressor(compressor: str | Compressor | None) -> Compressor | None:
    """Return the compressor named by ``compressor`` (None or "none": no compression)."""
    if compressor is None or compressor == "none":
        return None
    if isinstance(compressor, str):
        factory = _COMPRESSORS.get(compressor)
        if factory is None:
            raise ConfigurationError(
                f"unknown compressor {compressor!r}; valid: {_names(_COMPRESSORS)} or None"
            )
        return factory()
    ident = getattr(compressor, "id", None)
    if not (
        type(ident) is int
        and isinstance(getattr(compressor, "name", None), str)
        and callable(getattr(compressor, "compress", None))
        and callable(getattr(compressor, "decompress", None))
    ):
        raise ConfigurationError(
            f"compressor must be one of {_names(_COMPRESSORS)}, None or an object with id, "
            f"name, compress and decompress, got {_type_name(compressor)}"
        )
    if not 1 <= ident <= _MAX_ID:
        raise ConfigurationError(f"compressor id must be 1-{_MAX_ID}, got {ident}")
    return compressor


def _normalize_keys(signing_keys: object) -> tuple[bytes, ...]:
    """Return the signing keys as bytes, first (signing) key first; () if None."""
    if signing_keys is None:
        return ()
    if isinstance(signing_keys, bytes | str):
        items: Sequence[object] = [signing_keys]
    elif isinstance(signing_keys, Sequence):
        items = signing_keys
    else:
        raise ConfigurationError(
            f"signing_keys must be bytes, str or a sequence of them, got {_type_name(signing_keys)}"
        )
    if not items:
        raise ConfigurationError("signing_keys is empty; pass None to disable signing")
    keys: list[bytes] = []
    for index, key in enumerate(items):
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes):
            raise ConfigurationError(
                f"signing_keys[{index}] must be bytes or str, got {_type_name(key)}"
            )
        if not key:
            raise ConfigurationError(f"signing_keys[{index}] is empty")
        keys.append(key)
    return tuple(keys)


def _lazy(factory: Callable[[], _T], what: str) -> Callable[[], _T]:
    """Return a getter that creates ``factory()`` on first use.

    A missing optional dependency then surfaces as DecodeError for the payload that needs it,
    instead of failing when the codec is created.
    """
    cache: list[_T] = []

    def get() -> _T:
        if cache:
            return cache[0]
        try:
            obj = factory()
        except ConfigurationError as exc:
            raise DecodeError(f"cannot decode a {what} payload: {exc}") from exc
        cache.append(obj)
        return obj

    return get


def _lazy_loads(factory: Callable[[], Serializer], what: str) -> Callable[[bytes], Any]:
    get = _lazy(factory, what)

    def loads(body: bytes) -> Any:
        return get().loads(body)

    return loads


def _lazy_decompress(factory: Callable[[], Compressor], what: str) -> Callable[[bytes], bytes]:
    get = _lazy(factory, what)

    def decompress(body: bytes) -> bytes:
        return get().decompress(body)

    return decompress


def _raw_bytes(body: bytes) -> bytes:
    return body


def _utf8_str(body: bytes) -> str:
    try:
        return body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid utf-8 str payload") from exc


def _int_from_digits(data: bytes) -> int:
    if data.isdigit():  # ASCII digits only; rejects "1_0", "1 ", "1.5"
        try:
            return int(data)
        except ValueError as exc:  # more digits than int() accepts
            raise DecodeError("integer payload is too long") from exc
    raise DecodeError("payload starts with a digit but is not a decimal integer")


def _int_from_minus(data: bytes) -> int:
    if data[1:].isdigit():
        try:
            return int(data)
        except ValueError as exc:
            raise DecodeError("integer payload is too long") from exc
    raise DecodeError("payload starts with '-' but is not a decimal integer")


def _refuse(message: str) -> _Handler:
    def refuse(data: bytes) -> Any:
        raise DecodeError(message)

    return refuse


def _unknown_format(data: bytes) -> Any:
    raise DecodeError(f"unknown payload format (first byte 0x{data[0]:02x})")


class Codec:
    """Encode values to the bytes stored in Redis and decode them back.

    ``serializer``: ``"json"`` (default), ``"pickle"``, ``"msgpack"`` or a
    :class:`Serializer`. ``compressor``: None (default), ``"zlib"``, ``"zstd"``, ``"lz4"`` or
    a :class:`Compressor`. ``compress_min_size``: in bytes; a serialized value shorter than
    this is stored uncompressed. ``signing_keys``: one key or a sequence; None disables
    signing; the first key signs and every key verifies, so a new key goes first and old
    ones stay until their values expire. ``accept_pickle``: whether pickle payloads are
    read; None means only when the serializer is pickle.

    A codec is immutable and safe to share between threads and event loops.
    """

    __slots__ = (
        "_accept_pickle",
        "_comp_id",
        "_compress",
        "_compressor",
        "_dumps",
        "_keys",
        "_min_size",
        "_prefixes",
        "_ser_id",
        "_serializer",
        "_sign_key",
        "_table",
    )

    def __init__(
        self,
        *,
        serializer: str | Serializer = "json",
        compressor: str | Compressor | None = None,
        compress_min_size: int = 1024,
        signing_keys: bytes | str | Sequence[bytes | str] | None = None,
        accept_pickle: bool | None = None,
    ) -> None:
        ser = _resolve_serializer(serializer)
        comp = _resolve_compressor(compressor)
        if type(compress_min_size) is not int or compress_min_size < 0:
            raise ConfigurationError(
                f"compress_min_size must be an int >= 0 (bytes), got {compress_min_size!r}"
            )
        if accept_pickle is None:
            accept_pickle = ser.id == _PICKLE_ID
        elif not isinstance(accept_pickle, bool):
            raise ConfigurationError(
                f"accept_pickle must be True, False or None, got {accept_pickle!r}"
            )
        elif not accept_pickle and ser.id == _PICKLE_ID:
            raise ConfigurationError(
                "accept_pickle=False with the pickle serializer: the codec could not read "
                "what it writes"
            )
        keys = _normalize_keys(signing_keys)

        self._serializer = ser
        self._compressor = comp
        self._min_size = compress_min_size
        self._accept_pickle = accept_pickle
        self._keys = keys
        self._sign_key = keys[0] if keys else None
        self._dumps = ser.dumps
        self._ser_id = ser.id
        self._compress = comp.compress if comp is not None else None
        self._comp_id = comp.id if comp is not None else 0
        signed = _SIGNED_BIT if keys else 0
        # Header bytes for encode, indexed by serializer_id << 3 | compressor_id.
        self._prefixes = [bytes([_HEADER_BIT | signed | index]) for index in range(64)]
        self._table = self._build_table()

    def _build_table(self) -> list[_Handler]:
        """Return the decode handler for every possible first byte of a payload."""
        loaders: dict[int, Callable[[bytes], Any]] = {
            _RAW_BYTES_ID: _raw_bytes,
            _UTF8_STR_ID: _utf8_str,
            _JSON_ID: JSONSerializer().loads,
            _PICKLE_ID: PickleSerializer().loads,
            _MSGPACK_ID: _lazy_loads(MsgpackSerializer, "msgpack"),
        }
        loaders[self._ser_id] = self._serializer.loads
        decompressors: dict[int, Callable[[bytes], bytes]] = {
            ZlibCompressor.id: ZlibCompressor().decompress,
            ZstdCompressor.id: _lazy_decompress(ZstdCompressor, "zstd-compressed"),
            LZ4Compressor.id: _lazy_decompress(LZ4Compressor, "lz4-compressed"),
        }
        if self._compressor is not None:
            decompressors[self._compressor.id] = self._compressor.decompress

        table: list[_Handler] = [_unknown_format] * 256
        for digit in b"0123456789":
            table[digit] = _int_from_digits
        table[ord("-")] = _int_from_minus
        for header in range(_HEADER_BIT, 256):
            table[header] = self._handler(header, loaders, decompressors)
        return table

    def _handler(
        self,
        header: int,
        loaders: dict[int, Callable[[bytes], Any]],
        decompressors: dict[int, Callable[[bytes], bytes]],
    ) -> _Handler:
        """Return the decode handler for payloads starting with ``header``.

        Every refusal is decided here, from the header alone, so a refused payload is never
        verified, decompressed or deserialized.
        """
        signed = bool(header & _SIGNED_BIT)
        ser_id = (header >> 3) & _MAX_ID
        comp_id = header & _MAX_ID
        loads = loaders.get(ser_id)
        if loads is None:
            return _refuse(f"unknown serializer id {ser_id} in header 0x{header:02x}")
        decompress = decompressors.get(comp_id) if comp_id else None
        if comp_id and decompress is None:
            return _refuse(f"unknown compressor id {comp_id} in header 0x{header:02x}")
        if ser_id == _PICKLE_ID:
            if not self._accept_pickle:
                return _refuse("pickle payload refused: this codec does not accept pickle")
            if self._keys and not signed:
                return _refuse("unsigned pickle payload refused: this codec requires signatures")
        if signed and not self._keys:
            return _refuse("signed payload refused: this codec has no keys to verify it")

        if not signed:
            if decompress is None:

                def plain(data: bytes) -> Any:
                    return loads(data[1:])

                return plain

            def compressed(data: bytes) -> Any:
                return loads(decompress(data[1:]))

            return compressed

        verify = self._verify
        if decompress is None:

            def signed_plain(data: bytes) -> Any:
                return loads(verify(data))

            return signed_plain

        def signed_compressed(data: bytes) -> Any:
            return loads(decompress(verify(data)))

        return signed_compressed

    def _verify(self, data: bytes) -> bytes:
        """Return the body of a signed payload whose MAC matches one key, else raise."""
        if len(data) < _SIGNED_BODY_START:
            raise DecodeError("signed payload is truncated")
        mac = data[1:_SIGNED_BODY_START]
        body = data[_SIGNED_BODY_START:]
        message = data[:1] + body
        for key in self._keys:
            if hmac.compare_digest(hmac.digest(key, message, "sha256"), mac):
                return body
        raise DecodeError("signature check failed: payload altered or signed with another key")

    def encode(self, value: Any) -> bytes:
        """Return the bytes to store for ``value``; raise EncodeError if it can't be serialized."""
        body: bytes
        cls = type(value)
        if cls is int:
            try:
                return b"%d" % value
            except ValueError:  # more digits than int-to-str allows: let the serializer try
                pass
        if cls is bytes:
            body = value
            ser_id = _RAW_BYTES_ID
        elif cls is str:
            body = value.encode("utf-8", "surrogatepass")
            ser_id = _UTF8_STR_ID
        else:
            body = self._dumps(value)
            ser_id = self._ser_id
        comp_id = 0
        compress = self._compress
        if compress is not None and len(body) >= self._min_size:
            packed = compress(body)
            if len(packed) < len(body):
                body = packed
                comp_id = self._comp_id
        prefix = self._prefixes[ser_id << 3 | comp_id]
        key = self._sign_key
        if key is None:
            return prefix + body
        return b"".join((prefix, hmac.digest(key, prefix + body, "sha256"), body))

    def decode(self, data: bytes) -> Any:
        """Return the value stored as ``data``; raise DecodeError if it is unreadable or refused."""
        try:
            handler = self._table[data[0]]
        except IndexError:
            raise DecodeError("empty payload") from None
        except TypeError:
            raise DecodeError(f"payload must be bytes, got {_type_name(data)}") from None
        return handler(data)

    @property
    def serializer(self) -> Serializer:
        """The serializer used for values that are not int, bytes or str."""
        return self._serializer

    @property
    def compressor(self) -> Compressor | None:
        """The compressor used when it helps; None if values are never compressed."""
        return self._compressor

    @property
    def compress_min_size(self) -> int:
        """Serialized size in bytes below which values are stored uncompressed."""
        return self._min_size

    @property
    def signed(self) -> bool:
        """Whether this codec signs what it writes (it has signing keys)."""
        return bool(self._keys)

    @property
    def accept_pickle(self) -> bool:
        """Whether pickle payloads are read (subject to the signing rules)."""
        return self._accept_pickle

    def __repr__(self) -> str:
        compressor = self._compressor.name if self._compressor is not None else None
        return (
            f"Codec(serializer={self._serializer.name!r}, compressor={compressor!r}, "
            f"compress_min_size={self._min_size}, signed={self.signed}, "
            f"accept_pickle={self._accept_pickle})"
        )
