// User authentication: the SDK's authenticateUser signs, pusher-js signin() binds the
// connection to the user, sendToUser reaches it, terminateUserConnections disconnects it.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  TEST_TIMEOUT,
  connected,
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

/** A pusher-js client signed in as `id`, its #server-to-user channel subscribed. */
async function signedIn(id, name, signer = api) {
  const client = pusherClient(server, { signer, user: { id, user_info: { name } } });
  await connected(client);
  client.signin();
  await within('signin', (resolve) => {
    client.user.signinDonePromise.then(resolve);
  });
  assert.equal(client.user.user_data?.id, id, 'signin did not succeed');
  await subscribed(client, client.user.serverToUserChannel);
  return client;
}

/** Resolves when `client` leaves the connected state (with the new state). */
function dropped(client) {
  return within('disconnection', (resolve) => {
    client.connection.bind('state_change', ({ previous, current }) => {
      if (previous === 'connected' && current !== 'connected') resolve(current);
    });
  });
}

test('signin, sendToUser and terminateUserConnections', { timeout: TEST_TIMEOUT }, async () => {
  const ada1 = await signedIn('7', 'Ada');
  const ada2 = await signedIn('7', 'Ada (phone)');
  const bob = await signedIn('8', 'Bob');
  const anon = pusherClient(server, { signer: api });
  await connected(anon);
  const anonChannel = anon.subscribe('lobby');
  await subscribed(anon, anonChannel);

  // sendToUser reaches every connection of that user and nobody else.
  const bobSaw = [];
  bob.user.bind('notice', (d) => bobSaw.push(d));
  const both = Promise.all([nextEvent(ada1.user, 'notice'), nextEvent(ada2.user, 'notice')]);
  await api.sendToUser('7', 'notice', { text: 'for Ada' });
  assert.deepEqual(await both, [{ text: 'for Ada' }, { text: 'for Ada' }]);

  // terminate_connections: both of Ada's connections drop, Bob's and the anonymous stay.
  const ada1Socket = ada1.connection.socket_id;
  const ada1Dropped = dropped(ada1);
  const ada2Dropped = dropped(ada2);
  const res = await api.terminateUserConnections('7');
  assert.equal(res.status, 200);
  await Promise.all([ada1Dropped, ada2Dropped]);

  // Fence for the survivors: they still get events on their live connections.
  const bobGets = nextEvent(bob.user, 'notice', bob);
  await api.sendToUser('8', 'notice', { text: 'for Bob' });
  assert.deepEqual(await bobGets, { text: 'for Bob' });
  assert.deepEqual(bobSaw, [{ text: 'for Bob' }]);
  const anonGets = nextEvent(anonChannel, 'ping', anon);
  await api.trigger('lobby', 'ping', {});
  await anonGets;
  assert.equal(bob.connection.state, 'connected');
  assert.equal(anon.connection.state, 'connected');

  // pusher-js reconnects by itself (new socket id) and signs in again.
  await within(
    'reconnection and new signin',
    (resolve) => {
      const check = () =>
        ada1.connection.state === 'connected' && ada1.user.serverToUserChannel?.subscribed
          ? resolve()
          : setTimeout(check, 20);
      check();
    },
    { ms: 8_000 },
  );
  assert.notEqual(ada1.connection.socket_id, ada1Socket);
  const again = nextEvent(ada1.user, 'notice', ada1);
  await api.sendToUser('7', 'notice', { text: 'welcome back' });
  assert.deepEqual(await again, { text: 'welcome back' });
});

test('a signin signed with the wrong secret is refused (4009)', { timeout: TEST_TIMEOUT }, async () => {
  const client = pusherClient(server, {
    signer: sdk(server, { secret: 'not-the-secret' }),
    user: { id: '9', user_info: {} },
  });
  await connected(client);
  const refused = within('pusher:error 4009', (resolve) => {
    client.connection.bind('error', (e) => resolve(e?.data));
  });
  client.signin();
  assert.deepEqual(await refused, { code: 4009, message: 'Connection is unauthorized' });
  assert.equal(client.user.user_data, null);
  assert.equal(client.connection.state, 'connected');
});
