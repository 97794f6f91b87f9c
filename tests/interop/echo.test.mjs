// laravel-echo (broadcaster 'reverb') against reverb-shard: public, private and presence
// channels, whispers, and events broadcast through the `pusher` SDK (what Laravel's
// reverb broadcaster does).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  TEST_TIMEOUT,
  connected,
  echoClient,
  sleep,
  within,
  withServer,
} from './support.mjs';

let server;
let api;
withServer((s, a) => {
  server = s;
  api = a;
});

/** Wait until an Echo channel is subscribed. */
function echoSubscribed(echo, channel, what) {
  const pusher = echo.connector.pusher;
  return within(
    `Echo subscription to ${what}`,
    (resolve, reject) => {
      channel.subscribed(resolve);
      channel.error((e) => reject(new Error(`subscription error: ${JSON.stringify(e)}`)));
    },
    { context: () => `pusher:error received: [${pusher.protocolErrors.join(', ')}]` },
  );
}

/** The next payload an Echo channel hands to `listen(event)`. */
function echoNext(channel, event) {
  return within(`Echo event ${event}`, (resolve) => {
    const handler = (data) => {
      channel.stopListening(event, handler);
      resolve(data);
    };
    channel.listen(event, handler);
  });
}

function echoNextWhisper(channel, name) {
  return within(`whisper ${name}`, (resolve) => {
    const handler = (data) => {
      channel.stopListeningForWhisper(name, handler);
      resolve(data);
    };
    channel.listenForWhisper(name, handler);
  });
}

test('Echo connects and receives SDK-triggered events on a public channel', { timeout: TEST_TIMEOUT }, async () => {
  const echo = echoClient(server, { signer: api });
  await connected(echo.connector.pusher);
  assert.match(echo.socketId(), /^\d+\.\d+$/);
  assert.equal(echo.connectionStatus(), 'connected');

  const channel = echo.channel('orders');
  await echoSubscribed(echo, channel, 'orders');

  // A Laravel event class: Echo's default namespace App.Events turns
  // listen('OrderShipped') into the event name App\Events\OrderShipped.
  const byClass = echoNext(channel, 'OrderShipped');
  await api.trigger('orders', 'App\\Events\\OrderShipped', { id: 42, total: 9.5 });
  assert.deepEqual(await byClass, { id: 42, total: 9.5 });

  // broadcastAs() names: a leading dot bypasses the namespace.
  const byName = echoNext(channel, '.order.shipped');
  await api.trigger('orders', 'order.shipped', { id: 43, note: 'ünïcødé ✓' });
  assert.deepEqual(await byName, { id: 43, note: 'ünïcødé ✓' });

  echo.disconnect();
});

test('Echo private channel: SDK-signed subscription, events and whispers', { timeout: TEST_TIMEOUT }, async () => {
  const alice = echoClient(server, { signer: api });
  const bob = echoClient(server, { signer: api });
  const aliceChannel = alice.private('orders.42');
  const bobChannel = bob.private('orders.42');
  await Promise.all([
    echoSubscribed(alice, aliceChannel, 'private-orders.42'),
    echoSubscribed(bob, bobChannel, 'private-orders.42'),
  ]);

  const both = Promise.all([
    echoNext(aliceChannel, '.order.shipped'),
    echoNext(bobChannel, '.order.shipped'),
  ]);
  await api.trigger('private-orders.42', 'order.shipped', { id: 42 });
  assert.deepEqual(await both, [{ id: 42 }, { id: 42 }]);

  // Whisper: reaches the other subscriber, never echoed to the sender.
  const aliceSaw = [];
  aliceChannel.listenForWhisper('typing', (d) => aliceSaw.push(d));
  const bobHears = echoNextWhisper(bobChannel, 'typing');
  aliceChannel.whisper('typing', { name: 'Alice', typing: true });
  assert.deepEqual(await bobHears, { name: 'Alice', typing: true });

  // And the other way round, which also fences Alice's stream: the server sends her
  // messages in order, so once Bob's whisper arrived her own would have too.
  const aliceHears = echoNextWhisper(aliceChannel, 'typing');
  bobChannel.whisper('typing', { name: 'Bob', typing: false });
  assert.deepEqual(await aliceHears, { name: 'Bob', typing: false });
  assert.deepEqual(aliceSaw, [{ name: 'Bob', typing: false }], 'sender got its own whisper');

  alice.disconnect();
  bob.disconnect();
});

test('Echo presence channel: here, joining, whisper, leaving', { timeout: TEST_TIMEOUT }, async () => {
  const ada = echoClient(server, {
    signer: api,
    presence: { user_id: 7, user_info: { id: 7, name: 'Ada' } },
  });
  const bob = echoClient(server, {
    signer: api,
    presence: { user_id: 'b-8', user_info: { id: 'b-8', name: 'Bob' } },
  });

  const adaRoom = ada.join('room.1');
  const adaHere = within('Ada here()', (resolve) => adaRoom.here(resolve));
  assert.deepEqual(await adaHere, [{ id: 7, name: 'Ada' }]);

  const joined = within('Ada joining()', (resolve) => adaRoom.joining(resolve));
  const bobRoom = bob.join('room.1');
  const bobHere = within('Bob here()', (resolve) => bobRoom.here(resolve));
  const members = await bobHere;
  assert.deepEqual(
    [...members].sort((a, b) => a.name.localeCompare(b.name)),
    [
      { id: 7, name: 'Ada' },
      { id: 'b-8', name: 'Bob' },
    ],
  );
  assert.deepEqual(await joined, { id: 'b-8', name: 'Bob' });

  // The HTTP API sees both members.
  const users = await (await api.get({ path: '/channels/presence-room.1/users' })).json();
  assert.deepEqual(
    users.users.map((u) => String(u.id)).sort(),
    ['7', 'b-8'],
  );

  // Whisper on a presence channel.
  const adaHears = echoNextWhisper(adaRoom, 'typing');
  bobRoom.whisper('typing', { typing: true });
  assert.deepEqual(await adaHears, { typing: true });

  // A broadcast from the backend reaches both.
  const both = Promise.all([echoNext(adaRoom, '.message'), echoNext(bobRoom, '.message')]);
  await api.trigger('presence-room.1', 'message', { text: 'hi' });
  assert.deepEqual(await both, [{ text: 'hi' }, { text: 'hi' }]);

  // Bob leaves the channel (unsubscribe): Ada's leaving() gets his info.
  const left = within('Ada leaving()', (resolve) => adaRoom.leaving(resolve));
  bob.leave('room.1');
  assert.deepEqual(await left, { id: 'b-8', name: 'Bob' });

  // Bob comes back and then disconnects entirely: leaving() fires again.
  const rejoined = within('Ada joining() again', (resolve) => adaRoom.joining(resolve));
  const bobRoom2 = bob.join('room.1');
  await within('Bob here() again', (resolve) => bobRoom2.here(resolve));
  assert.deepEqual(await rejoined, { id: 'b-8', name: 'Bob' });
  const gone = within('Ada leaving() after disconnect', (resolve) => adaRoom.leaving(resolve));
  bob.disconnect();
  assert.deepEqual(await gone, { id: 'b-8', name: 'Bob' });

  await sleep(50);
  const after = await (await api.get({ path: '/channels/presence-room.1/users' })).json();
  assert.deepEqual(after, { users: [{ id: 7 }] });

  ada.disconnect();
});
