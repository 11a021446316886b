// billing: the e-commerce example's billing service (Node.js, standard
// library only: the http module, no npm packages).
//
// The sidecar delivers every order (topic "orders", declarative
// Subscription in components/) to POST /orders as a CloudEvent; billing
// publishes one bill per order to topic "bills" through its sidecar and only
// then acknowledges the order, so a failed publish makes the sidecar retry
// the order. An order already billed is acknowledged without a second bill
// (idempotent under at-least-once delivery). GET /stats reports what it saw.
//
// Environment: APP_PORT (default 7002), DAPR_HTTP_PORT (default 3500),
// PUBSUB_NAME (default "pubsub").
'use strict';

const http = require('http');
const crypto = require('crypto');

const port = Number(process.env.APP_PORT || 7002);
const daprPort = Number(process.env.DAPR_HTTP_PORT || 3500);
const pubsub = process.env.PUBSUB_NAME || 'pubsub';

const seen = { orders: new Set(), bills: new Set() };
const deliveries = { orders: 0, bills: 0 };
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function publish(topic, event) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(event));
    const req = http.request({
      host: '127.0.0.1', port: daprPort, method: 'POST', agent,
      path: `/v1.0/publish/${pubsub}/${topic}`,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve();
        else reject(new Error(`sidecar answered ${res.statusCode}: ${Buffer.concat(chunks)}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

function reply(res, code, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function onOrder(event, res) {
  const order = event.data || {};
  if (!order.orderId) {
    console.log('order event without an orderId dropped');
    return reply(res, 200, { status: 'DROP' });
  }
  deliveries.orders++;
  if (seen.orders.has(order.orderId)) {
    return reply(res, 200, { status: 'SUCCESS' }); // billed already
  }
  const bill = {
    billId: crypto.randomUUID(),
    orderId: order.orderId,
    customer: order.customer,
    amount: order.amount,
    billed: new Date().toISOString(),
  };
  try {
    await publish('bills', bill);
  } catch (err) {
    console.log(`bill for order ${order.orderId} not published, asking for a retry: ${err.message}`);
    return reply(res, 200, { status: 'RETRY' });
  }
  seen.orders.add(order.orderId);
  seen.bills.add(order.orderId);
  deliveries.bills++;
  console.log(`order ${order.orderId} (from ${event.source}) billed: ${bill.billId}`);
  reply(res, 200, { status: 'SUCCESS' });
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    return reply(res, 200, {
      service: 'billing',
      seen: { orders: [...seen.orders].sort(), bills: [...seen.bills].sort() },
      deliveries,
    });
  }
  if (req.method === 'POST' && req.url === '/orders') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let event;
      try {
        event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        console.log(`order event is not JSON, dropped: ${err.message}`);
        return reply(res, 200, { status: 'DROP' });
      }
      onOrder(event, res).catch((err) => reply(res, 500, { error: String(err) }));
    });
    return;
  }
  reply(res, 404, { error: 'not found' });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`billing service listening on port ${port}, publishing bills to ${pubsub}/bills`);
});
