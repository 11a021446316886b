"""notification: the e-commerce example's notification service.

Python, standard library only. The sidecar delivers every order (topic
"orders") to POST /orders and every bill (topic "bills") to POST /bills as
CloudEvents (declarative Subscriptions in components/); the service "sends a
notification" (prints a line) once per order and once per bill, ignoring
redeliveries. GET /stats reports what it saw.

Environment: APP_PORT (default 7003).
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = {"orders": set(), "bills": set()}
DELIVERIES = {"orders": 0, "bills": 0}


def say(line):
    """Prints one whole line (print from several threads can interleave)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/stats":
            self.reply(404, {"error": "not found"})
            return
        with LOCK:
            snap = {
                "service": "notification",
                "seen": {k: sorted(v) for k, v in SEEN.items()},
                "deliveries": dict(DELIVERIES),
            }
        self.reply(200, snap)

    def do_POST(self):
        topic = self.path.strip("/")
        if topic not in SEEN:
            self.reply(404, {"error": "not found"})
            return
        try:
            event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except json.JSONDecodeError:
            self.reply(200, {"status": "DROP"})  # will never parse: do not retry
            return
        data = event.get("data") or {}
        order_id = data.get("orderId") if isinstance(data, dict) else None
        if not order_id:
            self.reply(200, {"status": "DROP"})
            return
        with LOCK:
            DELIVERIES[topic] += 1
            new = order_id not in SEEN[topic]
            SEEN[topic].add(order_id)
        if new:
            if topic == "orders":
                say(f"notify {data.get('customer')}: order {order_id} received ({data.get('amount')})")
            else:
                say(f"notify {data.get('customer')}: bill {data.get('billId')} for order {order_id}")
        self.reply(200, {"status": "SUCCESS"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "7003"))
    print(f"notification service listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
