"""A local stand-in for Slack, for scripts/demo.sh: the Web API methods the grants function calls
(`chat.postMessage`, `chat.update`, `users.info`), the `response_url` it answers a click on, and a
person clicking a button: a `block_actions` interaction signed as Slack signs them (`v0` HMAC-SHA256
of `v0:<timestamp>:<body>` with the app's signing secret), posted to the grants function.

Listens on 127.0.0.1 only.
"""
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Slack:
    def __init__(self, port, bot_token, signing_secret, emails):
        self.bot_token, self.signing_secret = bot_token, signing_secret
        self.emails = emails                 # Slack user id -> profile e-mail
        self.messages = {}                   # ts -> {"channel", "text", "blocks"}
        self.answers = []                    # what response_url received (ephemeral answers)
        self.lock = threading.Lock()
        self.base = f"http://127.0.0.1:{port}"
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                path = self.path.split("?")[0]
                if path.startswith("/actions/"):
                    with slack.lock:
                        slack.answers.append(json.loads(raw)["text"])
                    return self.reply({"ok": True})
                if self.headers.get("Authorization") != f"Bearer {slack.bot_token}":
                    return self.reply({"ok": False, "error": "invalid_auth"})
                if path == "/api/users.info":
                    user = urllib.parse.parse_qs(raw.decode()).get("user", [""])[0]
                    if user not in slack.emails:
                        return self.reply({"ok": False, "error": "user_not_found"})
                    return self.reply({"ok": True, "user": {"id": user, "deleted": False, "is_bot": False,
                                                            "profile": {"email": slack.emails[user]}}})
                body = json.loads(raw)
                with slack.lock:
                    if path == "/api/chat.postMessage":
                        ts = f"{time.time():.6f}"
                        slack.messages[ts] = {"channel": body["channel"], "text": body["text"], "blocks": body["blocks"]}
                        return self.reply({"ok": True, "channel": body["channel"], "ts": ts})
                    if path == "/api/chat.update":
                        if body["ts"] not in slack.messages:
                            return self.reply({"ok": False, "error": "message_not_found"})
                        slack.messages[body["ts"]].update(text=body["text"], blocks=body["blocks"])
                        return self.reply({"ok": True, "channel": body["channel"], "ts": body["ts"]})
                return self.reply({"ok": False, "error": "unknown_method"})

        self.server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def message_of(self, grant_id):
        with self.lock:
            return next((m for m in self.messages.values() if grant_id in m["text"]), None)

    def click(self, interactions_url, user, action, grant_id, signed_at=None):
        """A person clicks a button of the grant's message; returns the HTTP status."""
        with open(os.path.join(ROOT, "events", "slack", "block-actions-approve.json")) as f:
            payload = json.load(f)
        message = self.message_of(grant_id)
        payload["user"]["id"] = user
        payload["actions"][0].update(action_id=action, value=grant_id, block_id=f"grant:{grant_id}")
        payload["response_url"] = f"{self.base}/actions/T0ACME001/{int(time.time())}/demo"
        payload["container"]["channel_id"] = message["channel"] if message else "C0APPROVALS"
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        ts = str(int(signed_at if signed_at is not None else time.time()))
        signature = "v0=" + hmac.new(self.signing_secret.encode(), f"v0:{ts}:".encode() + body,
                                     hashlib.sha256).hexdigest()
        req = urllib.request.Request(interactions_url, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
