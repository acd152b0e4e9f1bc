"""What every answer carries so a browser keeps the screens to themselves:
a strict Content-Security-Policy (scripts, styles, frames only from this
server, no inline code), no framing, no MIME sniffing, no Referer to other
sites; and session cookies marked Secure when the request came over HTTPS.

A few lines rather than flask-talisman: the policy is one string, and the
Secure flag must follow each request (LUYUE_HTTPS or a trusted proxy's
X-Forwarded-Proto), which the session interface below does."""
from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

# 'self' covers same-origin websockets (wss/ws) in CSP 3 browsers; images
# may be data: (icons) or blob: (the proof photo's preview); the barcode
# reader compiles its WebAssembly ('wasm-unsafe-eval' allows only that).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers older than CSP 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SessionCookies(SecureCookieSessionInterface):
    """Session cookies: HttpOnly and SameSite=Lax (app config), and Secure
    whenever this request arrived over HTTPS, or always with LUYUE_HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


# Labels and manifests (PDF) are printed from a hidden frame of the packing
# and dock screens (static/js/outbound.js): they may be framed by this site
# only. A PDF runs none of the page's scripts, so framing is all that is set.
PDF_HEADERS = {**HEADERS, "Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}


def _protect(answer: Response) -> Response:
    for name, value in (PDF_HEADERS if answer.mimetype == "application/pdf" else HEADERS).items():
        answer.headers.setdefault(name, value)
    return answer


def register(app: Flask, https: bool, trusted_proxies: int) -> None:
    app.config.update(SESSION_COOKIE_SECURE=https, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    if https:
        app.config["PREFERRED_URL_SCHEME"] = "https"
    app.session_interface = SessionCookies()
    if trusted_proxies > 0:
        # Only the proxies we run may say the browser used HTTPS, and which
        # address it came from; a client's own X-Forwarded-* is not believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies, x_proto=trusted_proxies,
                                x_host=0, x_port=0, x_prefix=0)
    app.after_request(_protect)
