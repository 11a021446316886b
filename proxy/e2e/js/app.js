// app.js: a Dapr JS SDK DaprServer app for the Outrigger end-to-end test.
//
// Usage: node app.js <http|grpc> <appPort> <daprHttpOrGrpcPort> <appName>
//
// It registers one invocation handler, POST /process, that answers with what
// it received, starts the server (which waits for the sidecar's metadata API,
// as the SDK does), then prints one line "READY {json}" on stdout. It exits on
// SIGTERM/SIGINT, or by itself after 120 s so a lost test never leaves it behind.
"use strict";

const { DaprServer, CommunicationProtocolEnum, HttpMethod } = require("@dapr/dapr");

const [protocol, appPort, daprPort, appName] = process.argv.slice(2);
if (!["http", "grpc"].includes(protocol) || !appPort || !daprPort || !appName) {
  console.error("usage: node app.js <http|grpc> <appPort> <daprPort> <appName>");
  process.exit(2);
}
const proto = protocol === "grpc" ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP;

setTimeout(() => {
  console.error("app.js: lifetime of 120 s is over, exiting");
  process.exit(3);
}, 120_000).unref();

async function main() {
  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: appPort,
    communicationProtocol: proto,
    clientOptions: { daprHost: "127.0.0.1", daprPort, communicationProtocol: proto },
  });

  await server.invoker.listen(
    "process",
    async (data) => {
      let received;
      try {
        received = JSON.parse(data.body);
      } catch (e) {
        received = { unparsable: String(data.body) };
      }
      console.log(`INVOKED ${JSON.stringify({ body: data.body, metadata: data.metadata })}`);
      return { app: appName, protocol, received, contentType: data.metadata?.contentType ?? null };
    },
    { method: HttpMethod.POST },
  );

  await server.start();
  console.log(`READY ${JSON.stringify({ app: appName, protocol, appPort, daprPort })}`);

  const stop = async (sig) => {
    console.error(`app.js: ${sig}, stopping`);
    try {
      await server.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err) => {
  console.error("app.js: failed:", err && err.stack ? err.stack : err);
  process.exit(1);
});
