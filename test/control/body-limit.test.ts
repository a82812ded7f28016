/**
 * The 1 MiB request body limit, driven with curl over the Unix socket: a
 * body declared too large is answered 413 from its headers, before it is
 * read and without a "100 Continue"; a chunked body that grows past the
 * limit is answered 413 too; no connection is reset; the server goes on
 * serving.
 */
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../src/control/protocol.js';
import { run } from '../helpers/proc.js';
import { startServer } from './server.js';

let s: Awaited<ReturnType<typeof startServer>>;
let dir: string;
beforeAll(async () => {
  s = await startServer();
  dir = await mkdtemp(join(tmpdir(), 'cdevemu-body-'));
});
afterAll(async () => {
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** A file of `bytes` spaces, except for a JSON rule at its start: valid JSON of any length. */
async function body(name: string, bytes: number): Promise<string> {
  const path = join(dir, name);
  const rule = Buffer.from('{"action":"hang","device":"nothing"}');
  const fh = await open(path, 'w');
  try {
    await fh.write(rule);
    const spaces = Buffer.alloc(1 << 20, 0x20);
    for (let at = rule.length; at < bytes; at += spaces.length) await fh.write(spaces, 0, Math.min(spaces.length, bytes - at));
  } finally {
    await fh.close();
  }
  return path;
}

/** POST /v1/faults with curl -v: the final status, whether a 100 Continue came, and curl's exit code (0: no reset). */
async function post(file: string, headers: string[]): Promise<{ code: number | null; status: number; json: unknown; continued: boolean; stderr: string }> {
  const args = ['-sS', '-v', '-o', join(dir, 'answer'), '-w', '%{http_code}', '--unix-socket', s.socket, '--data-binary', `@${file}`];
  for (const h of headers) args.push('-H', h);
  const r = await run('curl', [...args, 'http://cdevemu/v1/faults'], { timeoutMs: 60_000 });
  const answer = await readFile(join(dir, 'answer'), 'utf8').catch(() => '');
  return {
    code: r.code,
    status: Number(r.stdout),
    json: answer ? (JSON.parse(answer) as unknown) : null,
    continued: /^< HTTP\/1\.1 100 Continue/m.test(r.stderr),
    stderr: r.stderr,
  };
}

const tooLarge = { error: `request body exceeds ${MAX_BODY_BYTES} bytes`, code: 'too_large' };

it('answers 413 from the Content-Length of a 20 MB body, without a connection reset', async () => {
  const r = await post(await body('20m', 20 << 20), ['Expect:']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.status).toBe(413);
  expect(r.json).toEqual(tooLarge);
});

it('never answers "100 Continue" to a body declared too large: 413 at once', async () => {
  const r = await post(await body('100m', 100 << 20), ['Expect: 100-continue']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.continued, r.stderr).toBe(false);
  expect(r.status).toBe(413);
  expect(r.json).toEqual(tooLarge);
});

it('answers 413 to a chunked body that grows past the limit, small or large', async () => {
  for (const bytes of [MAX_BODY_BYTES + 1, 20 << 20]) {
    const r = await post(await body(`chunked-${bytes}`, bytes), ['Transfer-Encoding: chunked', 'Expect:']);
    expect(r.code, `${bytes} bytes: ${r.stderr}`).toBe(0);
    expect(r.status, `${bytes} bytes`).toBe(413);
    expect(r.json).toEqual(tooLarge);
  }
});

it("answers 413 to Node's http client sending a body too large, with no EPIPE, however the race goes", async () => {
  // agent: false, as the typed client sends: Connection: close, and the body written in full.
  const postNode = (bytes: number): Promise<string> =>
    new Promise((resolve) => {
      const req = request({ socketPath: s.socket, method: 'POST', path: '/v1/faults', agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => req.once('close', () => resolve(`${res.statusCode} ${text.trim()}`)));
      });
      req.once('error', (err) => resolve(`error ${err.message}`));
      req.end(Buffer.alloc(bytes, 0x20));
    });
  const answers = [];
  for (const bytes of [...Array<number>(10).fill(2 << 20), 20 << 20]) answers.push(await postNode(bytes));
  expect(answers).toEqual(answers.map(() => `413 ${JSON.stringify(tooLarge)}`));
});

it('takes a body of exactly the limit, and "100 Continue" for it when asked', async () => {
  const file = await body('limit', MAX_BODY_BYTES);
  const r = await post(file, ['Expect: 100-continue']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.continued, r.stderr).toBe(true);
  expect(r.status).toBe(201);
  const chunked = await post(file, ['Transfer-Encoding: chunked', 'Expect:']);
  expect(chunked.status).toBe(201);
  await writeFile(join(dir, 'small'), '{"action":"hang"}');
  expect((await post(join(dir, 'small'), [])).status).toBe(201);
});
