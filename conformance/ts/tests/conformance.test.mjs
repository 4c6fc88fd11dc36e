// Conformance check of a running engram (ENGRAM_URL) with the official TypeScript SDK
// @honcho-ai/sdk 2.5.0. Run by scripts/test.sh through conformance/run_with_server.py,
// or by hand: ENGRAM_URL=http://127.0.0.1:8100 node --test tests/
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { Honcho } from '@honcho-ai/sdk';

const BASE = process.env.ENGRAM_URL;
if (!BASE) throw new Error('set ENGRAM_URL to the base URL of a running engram');

const uid = (p) => `${p}-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const client = (workspaceId = uid('ws')) =>
  new Honcho({ baseURL: BASE, workspaceId, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
const ids = (xs) => xs.map((x) => x.id);
const contents = (xs) => xs.map((m) => m.content);

describe('workspace', () => {
  test('metadata and configuration', async () => {
    const h = client();
    assert.deepEqual(await h.getMetadata(), {});
    await h.setMetadata({ team: 'core', n: 3 });
    assert.deepEqual(await h.getMetadata(), { team: 'core', n: 3 });
    await h.setConfiguration({ reasoning: { enabled: false } });
    const cfg = await h.getConfiguration();
    assert.equal(cfg.reasoning?.enabled, false);
  });

  test('list workspaces with filters and pagination', async () => {
    const tag = randomUUID();
    const wss = [uid('wsl'), uid('wsl'), uid('wsl')];
    for (const [i, w] of wss.entries()) await client(w).setMetadata({ tag, i });
    const h = client(wss[0]);
    const page = await h.workspaces({ filters: { metadata: { tag } }, size: 2 });
    assert.equal(page.total, 3);
    assert.equal(page.pages, 2);
    assert.deepEqual(page.items, wss.slice(0, 2));
    assert.deepEqual(await page.toArray(), wss);
    const rev = await h.workspaces({ filters: { metadata: { tag } }, reverse: true });
    assert.deepEqual(rev.items, [...wss].reverse());
  });
});

describe('peers', () => {
  test('get-or-create, metadata, configuration, list with filters', async () => {
    const h = client();
    const alice = await h.peer('alice', { metadata: { role: 'user' }, configuration: { observeMe: false } });
    assert.equal(alice.id, 'alice');
    assert.deepEqual(alice.metadata, { role: 'user' });
    assert.equal(alice.configuration?.observeMe, false);
    await h.peer('bob', { metadata: { role: 'bot' } });
    await h.peer('carol', { metadata: { role: 'user' } });

    await alice.setMetadata({ role: 'user', likes: ['tea'] });
    assert.deepEqual(await alice.getMetadata(), { role: 'user', likes: ['tea'] });
    await alice.setConfiguration({ observeMe: true });
    assert.equal((await alice.getConfiguration()).observeMe, true);

    assert.deepEqual(ids((await h.peers()).items), ['alice', 'bob', 'carol']);
    assert.deepEqual(ids((await h.peers({ filters: { metadata: { role: 'user' } } })).items), ['alice', 'carol']);
    assert.deepEqual(ids((await h.peers({ filters: { id: 'bob' } })).items), ['bob']);
    const paged = await h.peers({ size: 2 });
    assert.equal(paged.pages, 2);
    assert.deepEqual(ids(await paged.toArray()), ['alice', 'bob', 'carol']);
    assert.deepEqual(ids((await h.peers({ reverse: true })).items), ['carol', 'bob', 'alice']);
  });

  test('peer card and sessions', async () => {
    const h = client();
    const alice = await h.peer('alice');
    assert.equal(await alice.getCard(), null);
    assert.deepEqual(await alice.setCard(['likes tea']), ['likes tea']);
    assert.deepEqual(await alice.getCard(), ['likes tea']);
    assert.deepEqual(await alice.setCard(['bob cooks'], 'bob'), ['bob cooks']);
    assert.deepEqual(await alice.getCard('bob'), ['bob cooks']);
    await h.session('s1', { peers: ['alice'] });
    await h.session('s2', { peers: ['bob'] });
    assert.deepEqual(ids((await alice.sessions()).items), ['s1']);
  });
});

describe('sessions', () => {
  test('create with metadata/config/peers, peers and peer config', async () => {
    const h = client();
    const s = await h.session('chat', {
      metadata: { topic: 'travel' },
      configuration: { summary: { enabled: false } },
      peers: [['alice', { observeOthers: true }], 'bob'],
    });
    assert.equal(s.id, 'chat');
    assert.deepEqual(s.metadata, { topic: 'travel' });
    assert.deepEqual(ids(await s.peers()).sort(), ['alice', 'bob']);
    assert.equal((await s.getPeerConfiguration('alice')).observeOthers, true);
    await s.setPeerConfiguration('bob', { observeMe: false });
    assert.equal((await s.getPeerConfiguration('bob')).observeMe, false);
    await s.addPeers('carol');
    await s.removePeers(['bob']);
    assert.deepEqual(ids(await s.peers()).sort(), ['alice', 'carol']);
    await s.setPeers(['dave']);
    assert.deepEqual(ids(await s.peers()), ['dave']);

    await s.setMetadata({ topic: 'food' });
    assert.deepEqual(await s.getMetadata(), { topic: 'food' });
    await h.session('other', { metadata: { topic: 'x' } });
    assert.deepEqual(ids((await h.sessions({ filters: { metadata: { topic: 'food' } } })).items), ['chat']);
    assert.deepEqual(ids((await h.sessions()).items), ['chat', 'other']);
    assert.deepEqual(ids((await h.sessions({ reverse: true })).items), ['other', 'chat']);
  });

  test('clone with and without cut-off', async () => {
    const h = client();
    const alice = await h.peer('alice');
    const s = await h.session(uid('src'));
    const ms = await s.addMessages([alice.message('one'), alice.message('two'), alice.message('three')]);
    const full = await s.clone();
    assert.notEqual(full.id, s.id);
    assert.deepEqual(contents((await full.messages()).items), ['one', 'two', 'three']);
    const cut = await s.clone(ms[1].id);
    assert.deepEqual(contents((await cut.messages()).items), ['one', 'two']);
  });
});

describe('messages', () => {
  test('add, list with filters, get, update', async () => {
    const h = client();
    const alice = await h.peer('alice');
    const bob = await h.peer('bob');
    const s = await h.session('m');
    const single = await s.addMessages(alice.message('hello'));
    assert.equal(single.length, 1);
    assert.equal(single[0].peerId, 'alice');
    assert.equal(single[0].sessionId, 'm');
    assert.ok(single[0].tokenCount > 0);
    const batch = await s.addMessages([
      bob.message('hi', { metadata: { mood: 'happy' } }),
      alice.message('dated', { createdAt: '2023-01-01T12:00:00Z' }),
      bob.message('bye', { metadata: { mood: 'sad' } }),
    ]);
    assert.deepEqual(contents(batch), ['hi', 'dated', 'bye']);
    assert.equal(new Date(batch[1].createdAt).toISOString(), '2023-01-01T12:00:00.000Z');

    assert.deepEqual(contents((await s.messages()).items), ['hello', 'hi', 'dated', 'bye']);
    assert.deepEqual(contents((await s.messages({ reverse: true })).items), ['bye', 'dated', 'hi', 'hello']);
    assert.deepEqual(contents((await s.messages({ filters: { peer_id: 'bob' } })).items), ['hi', 'bye']);
    assert.deepEqual(contents((await s.messages({ filters: { metadata: { mood: 'sad' } } })).items), ['bye']);
    // a bare filter object is accepted too
    assert.deepEqual(contents((await s.messages({ peer_id: 'alice' })).items), ['hello', 'dated']);

    const got = await s.getMessage(batch[0].id);
    assert.deepEqual(got.metadata, { mood: 'happy' });
    const upd = await s.updateMessage(batch[0], { mood: 'calm' });
    assert.deepEqual(upd.metadata, { mood: 'calm' });
    assert.deepEqual((await s.getMessage(batch[0].id)).metadata, { mood: 'calm' });
  });

  test('pagination over more than one page', async () => {
    const h = client();
    const alice = await h.peer('alice');
    const s = await h.session('long');
    const want = Array.from({ length: 75 }, (_, i) => `m${i}`);
    await s.addMessages(want.slice(0, 40).map((t) => alice.message(t)));
    await s.addMessages(want.slice(40).map((t) => alice.message(t)));
    const page = await s.messages();
    assert.equal(page.items.length, 50);
    assert.equal(page.total, 75);
    assert.equal(page.pages, 2);
    assert.ok(page.hasNextPage);
    assert.deepEqual(contents(await page.toArray()), want);
    const seen = [];
    for await (const m of await s.messages({ size: 20 })) seen.push(m.content);
    assert.deepEqual(seen, want);
  });
});

describe('context', () => {
  test('token-limited context returns the newest messages, oldest first', async () => {
    const h = client();
    const alice = await h.peer('alice');
    const bob = await h.peer('bob');
    const s = await h.session('ctx');
    const texts = Array.from({ length: 8 }, (_, i) => `message ${i} about subject ${i * 11}`);
    const made = await s.addMessages(texts.map((t, i) => (i % 2 ? bob : alice).message(t)));
    const all = await s.context();
    assert.equal(all.sessionId, 'ctx');
    assert.deepEqual(contents(all.messages), texts);
    assert.equal(all.summary, null);
    assert.equal(all.peerRepresentation, null);
    assert.equal(all.peerCard, null);
    const budget = made[7].tokenCount + made[6].tokenCount;
    const ctx = await s.context({ tokens: budget, summary: false });
    assert.deepEqual(contents(ctx.messages), texts.slice(6));
    const openai = ctx.toOpenAI(bob);
    assert.deepEqual(openai.map((m) => m.role), ['user', 'assistant']);
  });
});
