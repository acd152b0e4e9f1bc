"""Input limits, checked before any view reads a field.

Every form field, query parameter and URL part is checked on arrival, before
parsing, so nothing costs more than reading a few hundred characters:

- its length (a scan at most 256 characters, a name 200, ...);
- control characters: refused with the catalogue's message. Tab, CR and LF,
  which wedge scanners and text areas send, pass in form fields; GS (0x1D),
  the GS1 FNC1 separator, passes in scan fields only (`barcodes.read_scan`
  reads it; master data never stores it);
- Unicode NFKC: full-width digits and letters (１２３４, ＡＢ) become the
  ASCII ones, so a code typed on a Chinese keyboard is the same code;
- the size of a screen's body: far below the API's 1 MiB (the rider's photo
  upload keeps its own limit).

Integer ids in URLs are range-checked by the `int` converter (a database
integer, else 404). The API's JSON bodies are checked by their own parsers
(`intake`, `masterdata`); this module covers its query parameters and paths.
"""
from __future__ import annotations

import unicodedata

from flask import Flask, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from app.fulfilment.errors import Refusal

# The largest id a database integer column holds.
MAX_ID = 2 ** 31 - 1

# A screen's form: a few scans and words, never more than this.
SCREEN_BODY_BYTES = 16 * 1024
# Endpoints that take an upload with its own limit (Settings.proof_photo_max_bytes).
UPLOAD_ENDPOINTS = {"rider.deliver_with_photo"}

SCAN_LENGTH = 256
NAME_LENGTH = 200
# Per field name: the most characters taken. Anything not named: DEFAULT_LENGTH.
FIELD_LENGTHS = {
    "scan": SCAN_LENGTH, "badge": SCAN_LENGTH, "bin": SCAN_LENGTH, "code": SCAN_LENGTH, "sku": SCAN_LENGTH,
    "pin": 32, "quantity": 16, "weight": 32, "hours": 8, "orders": 8, "after": 20, "language": 8,
    "scan_id": 128, "carrier": 64, "printer": 64, "size": 16, "day": 16, "from": 16, "to": 16,
    "name": NAME_LENGTH, "reason": 500, "note": 500, "q": 128, "next": 512, "node": 64,
}
DEFAULT_LENGTH = SCAN_LENGTH
# Fields a scanner types into: GS may separate GS1 element strings there.
SCAN_FIELDS = {"scan", "badge", "bin", "code"}
# What a wedge scanner or a text area sends around its text.
FORM_WHITESPACE = {"\t", "\n", "\r"}
GS = "\x1d"

# How a field is named to the worker (English, Chinese).
_FIELD_WORDS = {
    "scan": ("The scan", "扫描内容"), "badge": ("The badge", "工牌"), "pin": ("The PIN", "密码"),
    "code": ("The code", "代码"), "bin": ("The bin", "库位"), "quantity": ("The quantity", "数量"),
    "weight": ("The weight", "重量"), "reason": ("The reason", "原因"), "note": ("The note", "备注"),
    "q": ("The search", "搜索内容"), "name": ("The name", "名称"),
}


def field_words(name: str) -> dict[str, str]:
    en, zh = _FIELD_WORDS.get(name, (f"Field “{name[:40]}”", f"字段“{name[:40]}”"))
    return {"field_en": en, "field_zh": zh}


def checked(name: str, value: str, *, form: bool = False, limit: int | None = None) -> str:
    """The value NFKC-normalised, or a refusal: too long, or a control
    character that has no place there. Length is checked first, before
    normalising (which may make a string longer)."""
    checked_length(name, value, limit)
    allowed = (FORM_WHITESPACE if form else set()) | ({GS} if name in SCAN_FIELDS else set())
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in allowed:
            character = f"U+{ord(ch):04X}"
            raise _refused(name, "input_control_character", f"contains a control character ({character})",
                           character=character)
    return unicodedata.normalize("NFKC", value)


def checked_length(name: str, value: str, limit: int | None = None) -> str:
    limit = limit or FIELD_LENGTHS.get(name, DEFAULT_LENGTH)
    if len(value) > limit:
        raise _refused(name, "input_too_long", f"longer than {limit} characters", length=len(value), limit=limit)
    return value


def _refused(name: str, key: str, problem: str, **params) -> Refusal:
    # The API answers it as invalid_request, whose details name the field.
    details = {"fields": [name], "errors": [{"field": name, "message": problem}]}
    return Refusal(key, details=details, **field_words(name), **params)


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in a URL: a database id, so 0 to 2^31-1; beyond is 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _check_request() -> None:
    upload = request.endpoint in UPLOAD_ENDPOINTS
    api = request.path.startswith("/api/")
    if not api and not upload:
        if (request.content_length or 0) > SCREEN_BODY_BYTES:
            raise Refusal("too_large", limit=SCREEN_BODY_BYTES, details={"limit_bytes": SCREEN_BODY_BYTES})
        # Also a body sent without Content-Length (chunked): reading stops here.
        request.max_content_length = SCREEN_BODY_BYTES
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            # The API's own parts keep their contract: an id no order can have
            # (a NUL in it) is 404, a bad code 422 naming it.
            request.view_args[name] = checked(name, value) if not api else checked_length(name, value)
    request.args = ImmutableMultiDict([(k, checked(k, v)) for k, v in request.args.items(multi=True)])
    # An upload's body is the view's to read, under its own limit (and its
    # fields are the view's to check: reading them here would read the file).
    # The API takes JSON only (a form is 415 there).
    if not upload and not api and request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        request.form = ImmutableMultiDict([(checked(k, k, limit=64), checked(k, v, form=True))
                                           for k, v in request.form.items(multi=True)])


def register(app: Flask) -> None:
    """After the blueprints: the worker is known when a refusal is shown, so
    it appears on their screen, in their language."""
    app.before_request(_check_request)


def install_converter(app: Flask) -> None:
    """Before any route is added."""
    app.url_map.converters["int"] = DatabaseIdConverter
