// The `pusher` server SDK against reverb-shard's HTTP API, with pusher-js subscribers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  APP_KEY,
  TEST_TIMEOUT,
  collect,
  connected,
  json,
  nextEvent,
  pusherClient,
  sdk,
  subscribed,
  within,
  withServer,
} from './support.mjs';

let server;
let api;
withServer((s, a) => {
  server = s;
  api = a;
});

/** A connected pusher-js client subscribed to `names`; returns [client, ...channels]. */
async function subscriber(names, options = {}) {
  const client = pusherClient(server, { signer: api, ...options });
  await connected(client);
  const channels = names.map((n) => client.subscribe(n));
  await Promise.all(channels.map((c) => subscribed(client, c)));
  return [client, ...channels];
}

test('authorizeChannel signatures match the server (spec worked examples)', { timeout: TEST_TIMEOUT }, () => {
  assert.deepEqual(api.authorizeChannel('123456789.987654321', 'private-orders.42'), {
    auth: `${APP_KEY}:89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e`,
  });
  // The SDK serialises channel_data itself; the server verifies it byte for byte.
  const presence = api.authorizeChannel('123456789.987654321', 'presence-room.1', {
    user_id: 7,
    user_info: { name: 'Ada' },
  });
  assert.equal(presence.channel_data, '{"user_id":7,"user_info":{"name":"Ada"}}');
  assert.equal(
    presence.auth,
    `${APP_KEY}:6602477fe21edc15ef8e6a877db2529a370c365b7b3e26762c4b60fab50e998c`,
  );
});

test('trigger delivers to every subscriber; socket_id excludes one', { timeout: TEST_TIMEOUT }, async () => {
  const [a, aChan] = await subscriber(['news']);
  const [b, bChan] = await subscriber(['news']);
  const aSeen = collect(aChan, 'headline');

  let res = await json(api.trigger('news', 'headline', { n: 1 }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {});
  await nextEvent(bChan, 'headline', b);

  // Excluding A by socket id: B gets it, A does not.
  const bGets = nextEvent(bChan, 'headline', b);
  await api.trigger('news', 'headline', { n: 2 }, { socket_id: a.connection.socket_id });
  assert.deepEqual(await bGets, { n: 2 });
  // Fence: a later event to A proves the excluded one was never queued before it.
  const fence = nextEvent(aChan, 'fence', a);
  await api.trigger('news', 'fence', {});
  await fence;
  assert.deepEqual(aSeen, [{ n: 1 }], 'the excluded socket received the event');

  // Several channels at once, with info attributes in the answer.
  const [, x, y] = await subscriber(['multi-x', 'multi-y']);
  const both = Promise.all([nextEvent(x, 'fan'), nextEvent(y, 'fan')]);
  res = await json(
    api.trigger(['multi-x', 'multi-y', 'multi-empty'], 'fan', 'plain string', {
      info: 'subscription_count',
    }),
  );
  assert.deepEqual(await both, ['plain string', 'plain string']);
  assert.deepEqual(res.body, {
    channels: {
      'multi-x': { subscription_count: 1 },
      'multi-y': { subscription_count: 1 },
      'multi-empty': {},
    },
  });
});

test('triggerBatch delivers every item', { timeout: TEST_TIMEOUT }, async () => {
  const [client, pub, priv] = await subscriber(['batch-a', 'private-batch-b']);
  const events = Promise.all([nextEvent(pub, 'one', client), nextEvent(priv, 'two', client)]);
  const res = await json(
    api.triggerBatch([
      { channel: 'batch-a', name: 'one', data: { n: 1 } },
      { channel: 'private-batch-b', name: 'two', data: JSON.stringify({ n: 2 }) },
    ]),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { batch: {} });
  assert.deepEqual(await events, [{ n: 1 }, { n: 2 }]);

  // With info on one item the answer is a list, one entry per item.
  const withInfo = await json(
    api.triggerBatch([
      { channel: 'batch-a', name: 'one', data: {} },
      { channel: 'batch-a', name: 'one', data: {}, info: 'subscription_count' },
    ]),
  );
  assert.deepEqual(withInfo.body, { batch: [{}, { subscription_count: 1 }] });
});

test('get /channels, /channels/{name}, /channels/{name}/users, /connections', { timeout: TEST_TIMEOUT }, async () => {
  await subscriber(['q-public', 'presence-q-room'], {
    presence: { user_id: 'u1', user_info: { name: 'One' } },
  });
  await subscriber(['q-public', 'presence-q-room'], {
    presence: { user_id: 'u2', user_info: { name: 'Two' } },
  });
  await subscriber(['presence-q-room'], {
    presence: { user_id: 'u1', user_info: { name: 'One again' } },
  });

  let res = await json(api.get({ path: '/channels', params: { filter_by_prefix: 'q-' } }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { channels: { 'q-public': {} } });

  res = await json(
    api.get({ path: '/channels', params: { filter_by_prefix: 'presence-q', info: 'user_count' } }),
  );
  assert.deepEqual(res.body, { channels: { 'presence-q-room': { user_count: 2 } } });

  res = await json(api.get({ path: '/channels/q-public', params: { info: 'subscription_count' } }));
  assert.deepEqual(res.body, { occupied: true, subscription_count: 2 });

  res = await json(api.get({ path: '/channels/presence-q-room', params: { info: 'user_count' } }));
  assert.deepEqual(res.body, { occupied: true, user_count: 2 });

  res = await json(api.get({ path: '/channels/nobody-here' }));
  assert.deepEqual(res.body, { occupied: false });

  res = await json(api.get({ path: '/channels/presence-q-room/users' }));
  assert.deepEqual(res.body, { users: [{ id: 'u1' }, { id: 'u2' }] });

  res = await json(api.get({ path: '/connections' }));
  assert.equal(res.status, 200);
  assert.ok(res.body.connections >= 3, `connections: ${JSON.stringify(res.body)}`);
});

test('a wrong secret is rejected with 401', { timeout: TEST_TIMEOUT }, async () => {
  const bad = sdk(server, { secret: 'not-the-secret' });
  await assert.rejects(bad.trigger('news', 'headline', { n: 3 }), (e) => {
    assert.equal(e.status, 401, `status ${e.status}, body ${e.body}`);
    assert.match(String(e.body), /Authentication signature invalid/);
    return true;
  });
  await assert.rejects(bad.get({ path: '/channels' }), (e) => e.status === 401);

  // A subscription signed with the wrong secret is refused too (4009, no subscription).
  const client = pusherClient(server, { signer: bad });
  await connected(client);
  const refused = within('pusher:error 4009', (resolve) => {
    client.connection.bind('error', (e) => resolve(e?.data));
  });
  const channel = client.subscribe('private-guarded');
  assert.deepEqual(await refused, { code: 4009, message: 'Connection is unauthorized' });
  assert.equal(channel.subscribed, false);
  const res = await json(api.get({ path: '/channels/private-guarded' }));
  assert.deepEqual(res.body, { occupied: false });
});
