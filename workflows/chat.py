"""Chat robots: one message in the format each vendor documents, signed where the vendor signs, sent
through the guarded client. An adapter: no ORM; it raises ``TransientError`` (retry) or ``PermanentError``.

The robot's URL and secret are credentials: they are never put in an error, a log line or an answer
(errors name the vendor and the URL's host only). Redirects are not followed, so neither reaches
another host.
"""
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit

import requests

from paas_site.errors import PermanentError, TransientError
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

from .choices import ChannelKind

TIMEOUT = 10
# Vendor error codes that mean "too many messages, try later" (the rest of a non-zero code is final):
# DingTalk 130101 "send too fast", WeCom 45009 "api freq out of limit", Feishu 11232 "frequency limited".
RATE_LIMITED = {ChannelKind.DINGTALK: {130101}, ChannelKind.WECOM: {45009}, ChannelKind.FEISHU: {11232}}


@dataclass(frozen=True)
class ChatMessage:
    subject: str
    lines: list[str]
    links: list[tuple[str, str]]  # (label, url)
    mentions: list[str] = field(default_factory=list)  # the vendor's user ids


@dataclass(frozen=True)
class ChatRequest:
    url: str
    body: dict


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk "加签": HMAC-SHA256 keyed with the secret over ``timestamp + "\\n" + secret``, base64, then
    URL-encoded (open.dingtalk.com, custom robot security settings)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark "签名校验": ``timestamp + "\\n" + secret`` is the HMAC-SHA256 *key* over an empty message,
    base64 (open.feishu.cn, custom bot guide, signature verification)."""
    return base64.b64encode(hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()


def _markdown(message: ChatMessage, mention: str) -> str:
    links = " · ".join(f"[{label}]({url})" for label, url in message.links)
    mentions = " ".join(mention.format(id) for id in message.mentions)
    return "\n\n".join(part for part in [f"**{message.subject}**", *message.lines, links, mentions] if part)


def chat_request(kind: str, url: str, secret: str, message: ChatMessage, now: float | None = None) -> ChatRequest:
    """The request a vendor's robot expects for ``message``."""
    now = time.time() if now is None else now
    if kind == ChannelKind.SLACK:
        # Slack incoming webhooks: JSON with ``text`` (the fallback) and ``blocks``; mentions are <@U…>
        # (api.slack.com/messaging/webhooks, "Formatting text": mrkdwn links are <url|label>).
        links = " · ".join(f"<{link}|{label}>" for label, link in message.links)
        mentions = " ".join(f"<@{id}>" for id in message.mentions)
        text = "\n".join(part for part in [f"*{message.subject}*", *message.lines, links, mentions] if part)
        return ChatRequest(url, {"text": message.subject, "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    if kind == ChannelKind.DINGTALK:
        # DingTalk custom robot: msgtype markdown (title + text); ``at.atUserIds`` and "@id" in the text mention;
        # with a secret, ``timestamp`` (ms) and ``sign`` go in the query string.
        body = {"msgtype": "markdown",
                "markdown": {"title": message.subject, "text": _markdown(message, "@{}")},
                "at": {"atUserIds": message.mentions, "isAtAll": False}}
        if secret:
            timestamp = int(now * 1000)
            url = f"{url}{'&' if urlsplit(url).query else '?'}timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"
        return ChatRequest(url, body)
    if kind == ChannelKind.WECOM:
        # WeCom group robot: the key is in the URL (…/cgi-bin/webhook/send?key=…); msgtype markdown, where
        # <@userid> mentions (developer.work.weixin.qq.com/document/path/91770).
        return ChatRequest(url, {"msgtype": "markdown", "markdown": {"content": _markdown(message, "<@{}>")}})
    if kind == ChannelKind.FEISHU:
        # Feishu/Lark custom bot: msg_type text, <at user_id="ou_…"></at> mentions; with a secret,
        # ``timestamp`` (s) and ``sign`` in the body.
        links = "\n".join(f"{label}: {link}" for label, link in message.links)
        mentions = " ".join(f'<at user_id="{id}"></at>' for id in message.mentions)
        text = "\n".join(part for part in [message.subject, *message.lines, links, mentions] if part)
        body: dict = {"msg_type": "text", "content": {"text": text}}
        if secret:
            timestamp = int(now)
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **body}
        return ChatRequest(url, body)
    raise ValueError(f"unknown chat channel kind {kind!r}")


def chat_send(kind: str, url: str, secret: str, message: ChatMessage) -> None:
    """Post ``message`` to the robot; return when the vendor accepted it."""
    request = chat_request(kind, url, secret, message)
    what = f"{ChannelKind(kind).label} at {urlsplit(url).hostname}"
    try:
        with GuardedSession() as session:
            response = session.post(request.url, data=json.dumps(request.body).encode(), timeout=TIMEOUT,
                                    headers={"Content-Type": "application/json", "User-Agent": "Slipway-Notify/1"},
                                    allow_redirects=False)
    except OutboundRefused as exc:
        raise OutboundRefused(f"{what}: {exc.message}") from None
    except requests.RequestException as exc:
        raise unreachable(what, exc) from None
    status = response.status_code
    if status >= 500 or status == 429:
        raise TransientError(f"{what} answered HTTP {status}")
    if status >= 300:
        raise PermanentError(f"{what} refused the message: HTTP {status}" + (" (a redirect, not followed)"
                                                                            if status < 400 else ""))
    _vendor_code_check(kind, what, response)


def _vendor_code_check(kind: str, what: str, response: requests.Response) -> None:
    """DingTalk, WeCom and Feishu answer HTTP 200 with an error code in the body; Slack answers "ok"."""
    if kind == ChannelKind.SLACK:
        return
    try:
        answer = response.json()
    except ValueError:
        raise PermanentError(f"{what} answered something that is not JSON") from None
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0))) if isinstance(answer, dict) else 0
    if code in (0, None):
        return
    reason = str(answer.get("errmsg") or answer.get("msg") or "")[:200]
    error = TransientError if code in RATE_LIMITED.get(kind, ()) else PermanentError
    raise error(f"{what} refused the message: code {code} {reason}".rstrip())
