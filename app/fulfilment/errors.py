"""Refusals: every one a client or a worker can meet, with one message in
each language, from this one catalogue.

API clients get `code` and the English message; screens show the message in
the worker's language. Messages take `str.format` fields from `params`.
"""
from __future__ import annotations

from typing import Any

# code -> (HTTP status, English, 中文)
CATALOGUE: dict[str, tuple[int, str, str]] = {
    # Order API (codes fixed by the public contract)
    "invalid_request": (422, "The request is not valid: {summary}", "请求无效:{summary}"),
    "unknown_sku": (422, "Unknown SKU: {skus}", "未知商品编码:{skus}"),
    "conflict": (409, "{reason}", "{reason}"),
    "not_found": (404, "No such {what}.", "找不到该{what}。"),
    "unauthorized": (401, "A valid bearer token is required.", "需要有效的访问令牌。"),
    "forbidden": (403, "This needs {needed}.", "需要{needed}权限。"),
    "too_large": (413, "The request body is over {limit} bytes.", "请求体超过 {limit} 字节。"),
    "rate_limited": (429, "Too many requests; retry after {seconds} s.", "请求过多,请 {seconds} 秒后重试。"),
    "unsupported_media_type": (415, "Send the body as application/json.", "请求体须为 application/json。"),
    "method_not_allowed": (405, "This address does not take {method}.", "该地址不支持 {method}。"),
    # Order lifecycle
    "order_already_shipped": (409, "Every fulfilment of this order has shipped; it can no longer be cancelled.",
                              "该订单的履约单均已出库,无法取消。"),
    "receipt_not_allowed": (409, "Receipt can be confirmed once every fulfilment has shipped; {pending} not yet.",
                            "所有履约单出库后才能确认收货;尚有 {pending} 未出库。"),
    "order_cancelled": (409, "This order was cancelled.", "该订单已取消。"),
    "external_id_reused": (409, "external_id {external_id} was already used for a different order.",
                           "外部单号 {external_id} 已用于另一笔不同的订单。"),
    "barcode_taken": (409, "Barcode {barcode} already belongs to SKU {sku}.", "条码 {barcode} 已属于商品 {sku}。"),
    "redispatch_not_allowed": (409, "Fulfilment {fulfilment} is {status}; only fulfilments not yet packed can move.",
                               "履约单 {fulfilment} 状态为 {status},只有未打包的履约单可以改派。"),
}

# Refusals whose API `code` is a contract code rather than their own name.
_API_CODE = {
    "order_already_shipped": "conflict",
    "receipt_not_allowed": "conflict",
    "order_cancelled": "conflict",
    "external_id_reused": "conflict",
    "barcode_taken": "conflict",
    "redispatch_not_allowed": "conflict",
}


class Refusal(Exception):
    """A domain rule said no. Raised before anything is written, or inside a
    transaction that is then rolled back."""

    def __init__(self, key: str, details: dict[str, Any] | None = None, **params: Any):
        if key not in CATALOGUE:
            raise KeyError(f"refusal {key!r} is not in the catalogue")
        self.key = key
        self.params = params
        self.details = details or {}
        super().__init__(self.message("en"))

    @property
    def status(self) -> int:
        return CATALOGUE[self.key][0]

    @property
    def code(self) -> str:
        return _API_CODE.get(self.key, self.key)

    def message(self, language: str = "en") -> str:
        _, en, zh = CATALOGUE[self.key]
        template = zh if language.startswith("zh") else en
        return template.format(**self.params)

    def body(self, language: str = "en") -> dict[str, Any]:
        details = dict(self.details)
        if self.code != self.key:
            details.setdefault("reason", self.key)
        return {"error": {"code": self.code, "message": self.message(language), "details": details}}
