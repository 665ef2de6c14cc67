"""Security headers on every dashboard response: no inline script or style, no framing, no Referer.

Pages are ``Cache-Control: no-store`` (they show an account's keys, and the reveal page shows
secrets); the static files, which hold nothing of anyone's, may be cached.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # the live traffic figures (static/traffic.js) poll their key's JSON
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
STATIC_CACHE = "public, max-age=86400"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool, static_prefix: str) -> None:
        self.app = app
        self.static_prefix = static_prefix
        self.headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        if https:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                cacheable = static and message["status"] == 200
                headers["Cache-Control"] = STATIC_CACHE if cacheable else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
