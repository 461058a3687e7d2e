"""A client for ``padv serve`` (standard library only: no extra dependency).

>>> c = padv.Client("http://localhost:8080", api_key="secret")            # doctest: +SKIP
>>> c.score({"id": "t1", "messages": [...]})["trajectory"]["pa"]          # doctest: +SKIP
>>> best = c.candidates(history, [reply_a, reply_b])["best"]              # doctest: +SKIP
>>> s = c.session(history[:2]); s.append([reply, observation])            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Optional, Sequence

from ._padv import PadvError

__all__ = ["Client", "ServerError", "Session"]


class ServerError(PadvError):
    """``padv serve`` answered an error: ``status`` (HTTP), ``type`` (``non_finite``,
    ``validation_error``, ``too_large``…) and the server's message."""

    def __init__(self, status: int, type: str, message: str, url: str):
        super().__init__(f"{url}: HTTP {status} {type}: {message}")
        self.status = status
        self.type = type
        self.message = message


class Client:
    """Talks to ``padv serve``. ``api_key`` (or the ``PADV_API_KEY`` environment variable)
    is sent as a bearer token; scoring options (``methods``, ``token_agg``, ``step_agg``,
    ``pa_mode``, ``beta``) given here apply to every request unless a call overrides them."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        api_key: Optional[str] = None,
        timeout: float = 600.0,
        **options: Any,
    ):
        if not url.startswith(("http://", "https://")):
            raise PadvError(f"{url!r}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("PADV_API_KEY")
        self.timeout = timeout
        self.options = options

    def __repr__(self) -> str:  # never shows the key
        return f"padv.Client({self.url!r})"

    def _request(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        url = self.url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self.api_key:
            req.add_header("authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)["error"]
                raise ServerError(e.code, err.get("type", "?"), err.get("message", ""), url) from None
            except (ValueError, KeyError, TypeError):
                raise ServerError(e.code, "http_error", raw[:200].decode(errors="replace"), url) from None
        except urllib.error.URLError as e:
            raise PadvError(f"{url}: cannot reach padv serve ({e.reason})") from None

    def _body(self, fields: dict, options: dict) -> dict:
        return {**self.options, **options, **fields}

    def health(self) -> Any:
        """``GET /health``."""
        return self._request("GET", "/health")

    def score(self, trajectory: dict, **options: Any) -> dict:
        """Score one trajectory (any format padv reads): per-step scores, the trajectory
        score per method and, unless ``include_record=False``, the per-token record."""
        return self._request("POST", "/v1/score", self._body({"trajectory": trajectory}, options))

    def candidates(self, messages: Sequence[dict], candidates: Sequence[dict], **options: Any) -> dict:
        """Score K candidate next messages after ``messages``: ``best`` is the argmax under
        the first method; a candidate that cannot be scored has its own ``error``."""
        body = {"messages": list(messages), "candidates": list(candidates)}
        return self._request("POST", "/v1/score/candidates", self._body(body, options))

    def session(self, messages: Sequence[dict], **options: Any) -> "Session":
        """Open a session: later appends compute only their new tokens."""
        answer = self._request("POST", "/v1/sessions", self._body({"messages": list(messages)}, options))
        return Session(self, answer)


class Session:
    """A ``padv serve`` session; ``last`` is the server's latest answer."""

    def __init__(self, client: Client, answer: dict):
        self.client = client
        self.id: str = answer["session_id"]
        self.last = answer

    def append(self, messages: Sequence[dict], **options: Any) -> dict:
        """Append messages; returns the answer with ``new_steps`` and the running
        ``trajectory`` scores."""
        self.last = self.client._request(
            "POST",
            f"/v1/sessions/{self.id}/messages",
            self.client._body({"messages": list(messages)}, options),
        )
        return self.last

    def close(self) -> None:
        """Delete the session on the server."""
        self.client._request("DELETE", f"/v1/sessions/{self.id}")

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
