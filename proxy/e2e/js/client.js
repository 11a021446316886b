// client.js: one Dapr JS SDK DaprClient call for the Outrigger end-to-end test.
//
// Usage:
//   node client.js <http|grpc> <daprPort> invoke <appId> <method> <jsonBody>
//   node client.js <http|grpc> <daprPort> metadata
//
// daprPort "env" passes neither host nor port, so the SDK finds the sidecar
// the way `dapr run` apps do: DAPR_HTTP_PORT / DAPR_GRPC_PORT on 127.0.0.1.
//
// It prints one line "RESULT {json}" with what the SDK returned and exits 0, or
// one line "ERROR {json}" ({message, code}; code is the gRPC status code of a
// ConnectRPC error, else null) and exits 1. It gives up after 30 s.
"use strict";

const { DaprClient, CommunicationProtocolEnum, HttpMethod } = require("@dapr/dapr");

const [protocol, daprPort, op, ...rest] = process.argv.slice(2);
if (!["http", "grpc"].includes(protocol) || !daprPort || !["invoke", "metadata"].includes(op)) {
  console.error("usage: node client.js <http|grpc> <daprPort> invoke <appId> <method> <jsonBody> | metadata");
  process.exit(2);
}
const proto = protocol === "grpc" ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP;

setTimeout(() => {
  console.error("client.js: no answer within 30 s");
  process.exit(3);
}, 30_000).unref();

async function main() {
  const client = new DaprClient(
    daprPort === "env"
      ? { communicationProtocol: proto }
      : { daprHost: "127.0.0.1", daprPort, communicationProtocol: proto },
  );
  await client.start();
  let result;
  switch (op) {
    case "invoke": {
      const [appId, method, body] = rest;
      result = await client.invoker.invoke(appId, method, HttpMethod.POST, JSON.parse(body));
      break;
    }
    case "metadata":
      result = await client.metadata.get();
      break;
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  await client.stop();
  process.exit(0);
}

main().catch((err) => {
  console.error("client.js: failed:", err && err.stack ? err.stack : err);
  const code = err && typeof err.code === "number" ? err.code : null;
  console.log(`ERROR ${JSON.stringify({ message: String(err && err.message ? err.message : err), code })}`);
  process.exit(1);
});
