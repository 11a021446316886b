// frontend: takes orders on :3000 and hands them to order-processor
// through its Outrigger sidecar (service invocation).
const express = require('express');

const app = express();
const port = Number(process.env.APP_PORT || 3000);
const daprPort = process.env.DAPR_HTTP_PORT || 3500;

app.use(express.json());

app.post('/submit-order', async (req, res) => {
  const orderData = req.body;
  console.log(`Frontend received order: ${JSON.stringify(orderData)}`);
  try {
    // The sidecar routes this to the app with id order-processor.
    const url = `http://localhost:${daprPort}/v1.0/invoke/order-processor/method/process`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(orderData),
    });
    if (!response.ok) {
      throw new Error(`order-processor answered ${response.status}: ${await response.text()}`);
    }
    const data = await response.json();
    console.log('Order processed:', data);
    res.json({ message: 'Order submitted successfully!', ...data });
  } catch (error) {
    console.error('Error processing order:', error.message);
    res.status(500).json({ message: 'Failed to submit order.' });
  }
});

app.listen(port, () => {
  console.log(`Frontend app listening at http://localhost:${port}`);
});
