// End-to-end encrypted channels: the `pusher` SDK (encryptionMasterKeyBase64) hands the
// per-channel shared secret to pusher-js in the authorization and encrypts what it
// triggers; reverb-shard only relays the ciphertext; pusher-js decrypts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  TEST_TIMEOUT,
  connected,
  echoClient,
  nextEvent,
  pusherClient,
  subscribed,
  within,
  withServer,
} from './support.mjs';

const MASTER_KEY = randomBytes(32).toString('base64');

let server;
let api;
withServer((s, a) => {
  server = s;
  api = a;
}, { encryptionMasterKeyBase64: MASTER_KEY });

test('pusher-js decrypts an event the SDK triggered on private-encrypted-*', { timeout: TEST_TIMEOUT }, async () => {
  const client = pusherClient(server, { signer: api });
  await connected(client);
  const channel = client.subscribe('private-encrypted-orders.42');
  await subscribed(client, channel);

  const got = nextEvent(channel, 'order.shipped', client);
  await api.trigger('private-encrypted-orders.42', 'order.shipped', { id: 42, secret: 's3cr3t ✓' });
  assert.deepEqual(await got, { id: 42, secret: 's3cr3t ✓' });

  // Batch triggers are encrypted per item too.
  const batched = nextEvent(channel, 'order.paid', client);
  await api.triggerBatch([
    { channel: 'private-encrypted-orders.42', name: 'order.paid', data: { id: 42, paid: true } },
  ]);
  assert.deepEqual(await batched, { id: 42, paid: true });
});

test('what crosses the server is ciphertext', { timeout: TEST_TIMEOUT }, async () => {
  // A connection that subscribes by hand (valid signature, no shared secret) and looks
  // at the raw channel message: the server must relay the SDK's ciphertext untouched.
  const raw = pusherClient(server, { signer: api });
  await connected(raw);
  const seen = [];
  raw.connection.bind('message', (m) => {
    if (m.channel === 'private-encrypted-wire' && m.event === 'wire') seen.push(m);
  });
  const socketId = raw.connection.socket_id;
  const { auth } = api.authorizeChannel(socketId, 'private-encrypted-wire');
  const subscribedRaw = within('raw subscription', (resolve) => {
    raw.connection.bind('message', (m) => {
      if (m.event === 'pusher_internal:subscription_succeeded' && m.channel === 'private-encrypted-wire') resolve();
    });
  });
  raw.send_event('pusher:subscribe', { channel: 'private-encrypted-wire', auth });
  await subscribedRaw;

  await api.trigger('private-encrypted-wire', 'wire', { plain: 'text-that-must-not-appear' });
  await within('ciphertext message', (resolve) => {
    const check = () => (seen.length ? resolve() : setTimeout(check, 10));
    check();
  });
  const data = typeof seen[0].data === 'string' ? JSON.parse(seen[0].data) : seen[0].data;
  assert.ok(data.nonce && data.ciphertext, `expected {nonce, ciphertext}, got ${JSON.stringify(data)}`);
  assert.ok(!JSON.stringify(seen[0]).includes('text-that-must-not-appear'));
});

test('Echo encryptedPrivate() listens and decrypts', { timeout: TEST_TIMEOUT }, async () => {
  const echo = echoClient(server, { signer: api });
  const channel = echo.encryptedPrivate('orders.7');
  await within('Echo encrypted subscription', (resolve) => channel.subscribed(resolve));
  const got = within('Echo encrypted event', (resolve) => channel.listen('.order.shipped', resolve));
  await api.trigger('private-encrypted-orders.7', 'order.shipped', { id: 7 });
  assert.deepEqual(await got, { id: 7 });
  echo.disconnect();
});
