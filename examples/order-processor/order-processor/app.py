"""order-processor: receives orders from the frontend through the sidecar.

Standard library only. Listens on APP_PORT (set by `outrigger run`).
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/process":
            self.send_error(404)
            return
        try:
            data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        except json.JSONDecodeError:
            self.send_error(400, "body must be JSON")
            return
        order_id = data.get("orderId")
        print(f"Received order {order_id} for processing.", flush=True)
        body = json.dumps({"status": "processed", "orderId": order_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "5000"))
    print(f"order-processor listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
