// Shared helpers of the interop suite: start/stop the real reverb-shard binary and build
// the real npm clients (pusher-js, laravel-echo, the `pusher` server SDK) against it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';

import PusherJS from 'pusher-js';
import EchoModule from 'laravel-echo';
import PusherSDK from 'pusher';

// laravel-echo is an ES module with a default export; depending on how Node resolves it
// (ESM or its CommonJS build) the class is the namespace's default or its `default`.
const Echo = EchoModule.default ?? EchoModule;

export const APP_ID = '123456';
export const APP_KEY = 'app-key';
export const APP_SECRET = 'app-secret';

/** Per-test timeout (ms) passed to every `test()`. */
export const TEST_TIMEOUT = 20_000;
/** How long one expected event may take to arrive. */
export const WAIT_MS = 5_000;

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

const CONFIG = `
[server]
host = "127.0.0.1"
port = 0

[[apps]]
app_id = "${APP_ID}"
key = "${APP_KEY}"
secret = "${APP_SECRET}"
accept_client_events_from = "members"
`;

/** Clients created through this module; disconnected before the server stops. */
const clients = new Set();

/**
 * Start the binary named by REVERB_SHARD_BIN with a temp config on an ephemeral port and
 * wait for its `Starting server on HOST:PORT` banner.
 */
export async function startServer() {
  const bin = process.env.REVERB_SHARD_BIN;
  if (!bin) {
    throw new Error(
      'REVERB_SHARD_BIN is not set: point it at the reverb-shard binary ' +
        '(cargo test --test interop does this)',
    );
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'reverb-shard-interop-'));
  const configPath = path.join(dir, 'config.toml');
  writeFileSync(configPath, CONFIG);

  // Only this suite's settings: no REVERB_*/REDIS_* from the developer's shell, and the
  // temp dir as cwd so no ./config.toml or ./.env is picked up.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('REVERB_') && !k.startsWith('REDIS_'),
    ),
  );
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  const cores = String(Math.max(1, Math.min(2, cpus)));
  const child = spawn(bin, ['start', '--config', configPath, '--cores', cores], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const logs = [];
  let exit = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no start banner within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    const onLine = (line) => {
      logs.push(line);
      const m = /Starting server on (\S+)/.exec(line);
      if (m) {
        const hostPort = m[1].split('/')[0];
        const p = Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
        if (p > 0) {
          clearTimeout(timer);
          resolve(p);
        }
      }
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited before its banner (code ${code}, signal ${signal})`));
    });
  }).catch((e) => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    e.message += `\n--- server output ---\n${logs.join('\n')}`;
    throw e;
  });

  return {
    port,
    logs,
    /** Disconnect every client, SIGTERM the server, wait for its exit status. */
    async stop() {
      for (const c of clients) {
        try {
          c.disconnect();
        } catch {
          // already gone
        }
      }
      clients.clear();
      if (exit === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const status = await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return status;
    },
  };
}

/**
 * One server for the calling test file: started before its tests, stopped after them
 * (and required to exit 0). `ready(server, api)` receives the server and an SDK built
 * with `sdkOptions`.
 */
export function withServer(ready, sdkOptions = {}) {
  let server;
  before(async () => {
    server = await startServer();
    ready(server, sdk(server, sdkOptions));
  });
  after(async () => {
    const status = await server?.stop();
    if (status) assert.equal(status.code, 0, `server exit status ${JSON.stringify(status)}`);
  });
}

/** The `pusher` server SDK pointed at the server (override e.g. `secret`). */
export function sdk(server, options = {}) {
  return new PusherSDK({
    appId: APP_ID,
    key: APP_KEY,
    secret: APP_SECRET,
    host: '127.0.0.1',
    port: String(server.port),
    useTLS: false,
    ...options,
  });
}

/** Connection options shared by pusher-js and Echo (what a Laravel app's Echo uses). */
function wsOptions(server) {
  return {
    wsHost: '127.0.0.1',
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: '',
  };
}

/**
 * A pusher-js (node build) client whose channel authorization and user authentication are
 * signed in-process by `signer` (an SDK instance), as a Laravel backend would.
 * `presence`: the channel_data for presence channels; `user`: the user data for signin().
 */
export function pusherClient(server, { signer, presence, user, ...options } = {}) {
  const client = new PusherJS(APP_KEY, {
    ...wsOptions(server),
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const data = channelName.startsWith('presence-') ? presence : undefined;
          callback(null, signer.authorizeChannel(socketId, channelName, data));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          callback(null, signer.authenticateUser(socketId, user));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    ...options,
  });
  track(client);
  return client;
}

/**
 * laravel-echo with `broadcaster: 'reverb'` exactly as Laravel's echo.js configures it,
 * except that the authorizer signs with the SDK instead of POSTing /broadcasting/auth.
 */
export function echoClient(server, { signer, presence } = {}) {
  const echo = new Echo({
    broadcaster: 'reverb',
    key: APP_KEY,
    ...wsOptions(server),
    Pusher: PusherJS,
    authorizer: (channel) => ({
      authorize: (socketId, callback) => {
        try {
          const data = channel.name.startsWith('presence-') ? presence : undefined;
          callback(null, signer.authorizeChannel(socketId, channel.name, data));
        } catch (e) {
          callback(e, null);
        }
      },
    }),
  });
  track(echo.connector.pusher);
  return echo;
}

/** Record the client's `pusher:error`s (shown in timeout messages) and track it. */
function track(client) {
  client.protocolErrors = [];
  client.connection.bind('error', (e) => {
    client.protocolErrors.push(JSON.stringify(e?.data ?? e?.error ?? e));
  });
  clients.add(client);
}

/**
 * A promise settled by `executor(resolve, reject)` or rejected after `ms` with a message
 * naming `what` (plus `context()`, e.g. protocol errors seen so far).
 */
export function within(what, executor, { ms = WAIT_MS, context } = {}) {
  let timer;
  return new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      const extra = context ? ` (${context()})` : '';
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${extra}`));
    }, ms);
    executor(resolve, reject);
  }).finally(() => clearTimeout(timer));
}

function errorsOf(client) {
  return () => `pusher:error received: [${(client.protocolErrors ?? []).join(', ')}]`;
}

/** Resolves with the socket id once `client` (pusher-js) is connected. */
export function connected(client) {
  return within(
    'connection',
    (resolve) => {
      if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
      client.connection.bind('connected', () => resolve(client.connection.socket_id));
    },
    { context: errorsOf(client) },
  );
}

/** Resolves once the pusher-js channel is subscribed; rejects on subscription_error. */
export function subscribed(client, channel) {
  return within(
    `subscription to ${channel.name}`,
    (resolve, reject) => {
      if (channel.subscribed) return resolve();
      channel.bind('pusher:subscription_succeeded', (data) => resolve(data));
      channel.bind('pusher:subscription_error', (e) =>
        reject(new Error(`subscription_error on ${channel.name}: ${JSON.stringify(e)}`)),
      );
    },
    { context: errorsOf(client) },
  );
}

/** Resolves with the data of the next `event` on a pusher-js channel (or client.user). */
export function nextEvent(channel, event, client) {
  return within(
    `event ${event} on ${channel.name ?? 'user channel'}`,
    (resolve) => {
      const handler = (data) => {
        channel.unbind(event, handler);
        resolve(data);
      };
      channel.bind(event, handler);
    },
    { context: client ? errorsOf(client) : undefined },
  );
}

/** Collects every `event` payload on a pusher-js channel into the returned array. */
export function collect(channel, event) {
  const seen = [];
  channel.bind(event, (data) => seen.push(data));
  return seen;
}

/** Resolves with the parsed JSON body of an SDK response. */
export async function json(responsePromise) {
  const res = await responsePromise;
  return { status: res.status, body: await res.json() };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
