// Images that travel as archives or progress streams, as UCP's classic Swarm compatibility moved
// them: `docker pull` on every node with each node's progress streamed as it comes, `docker build`
// on one node the caller may schedule on (context streamed in, output streamed out), `docker load`
// and `docker import` with the archive teed to every node at once, and `docker save` from a node
// holding every image.
// Nothing here holds a body whole: archives flow with backpressure, progress line by line.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Call } from './call.js';
import { forwardableHeaders, readAll, type ClusterNode } from './engines.js';
import { DockerApiError, badRequest, notFound } from './errors.js';
import type { Gateway } from './gateway.js';
import { isObject, labelsField } from './policy.js';
import { extractConstraints, parseConstraint, type Constraint } from './schedule.js';

type Message = Record<string, unknown>;

/** What one node answered: the response (not read yet), or why there is none. */
interface NodeAnswer {
  node: ClusterNode;
  response?: IncomingMessage;
  error?: Error;
}

/** How a node's progress messages are shown to the CLI. */
interface ProgressFormat {
  /** The line sent when a node starts streaming (none when undefined). */
  started?(node: ClusterNode): Message;
  /** A progress message of the node, rewritten so the CLI tells the nodes apart. */
  progress(node: ClusterNode, message: Message): Message;
  /** The line that reports a node's failure in the stream. */
  failed(node: ClusterNode, message: string): Message;
}

const TAR_BLOCK = 512;
const CONSTRAINT_ARG = 'constraint:';

export class Images {
  constructor(private readonly gw: Gateway) {}

  // ---- docker pull: every Ready node, progress merged per node ----

  async pull(call: Call): Promise<void> {
    await this.gw.require(call, 'Image Pull', '/');
    const query = new URLSearchParams(call.search);
    const from = query.get('fromImage');
    if (!from) {
      const source = query.get('fromSrc');
      if (source !== null && source !== '') return this.importImage(call, source);
      throw badRequest('fromImage is required');
    }
    const tag = query.get('tag');
    const image = tag ? `${from}${tag.startsWith('sha256:') ? '@' : ':'}${tag}` : from;
    const nodes = await this.readyNodes();
    const headers = forwardableHeaders(call.req.headers);
    delete headers['content-length'];
    const path = `${call.prefix}${call.path}${call.search}`;
    const answers = nodes.map((node) => this.send(node, path, headers, undefined, call.signal));
    // Classic Swarm's lines: the node as the message id, "Pulling <image>... : <engine status>".
    const prefix = `Pulling ${image}...`;
    await this.relay(call, answers, {
      started: (node) => ({ status: prefix, progressDetail: {}, id: node.name }),
      progress: (node, m) => ({ ...m, id: node.name, status: `${prefix} : ${describe(m)}` }),
      failed: (node, message) => ({ status: `${prefix} : ${message}`, progressDetail: {}, id: node.name }),
    });
  }

  // ---- docker build: one schedulable node, context in and output out as streams ----

  async build(call: Call): Promise<void> {
    await this.gw.require(call, 'Image Build', '/');
    const query = new URLSearchParams(call.search);
    const constraints = buildConstraints(query);
    const remote = query.get('remote');
    // Bad contexts are the caller's error (engines answer them with 500s or odd messages).
    const context = await peekArchive(call.req, 'build context', remote !== null && remote !== '');
    try {
      const node = await this.gw.spreadOnto(call, constraints);
      const search = query.toString();
      const upstream = await this.gw.pool.send(
        node,
        'POST',
        `${call.prefix}${call.path}${search ? `?${search}` : ''}`,
        forwardableHeaders(call.req.headers),
        context,
        call.signal,
      );
      // Before the first step runs, what an engine refuses is the context or the Dockerfile (no
      // Dockerfile in it, a bad path...), which engines answer with a 500: the caller's error.
      await this.pipeBack(call, node, upstream, 400);
    } catch (error) {
      discard(call.req, context);
      throw error;
    }
  }

  // ---- docker load: the archive teed to every Ready node at once ----

  async load(call: Call): Promise<void> {
    await this.gw.require(call, 'Image Load', '/');
    const nodes = await this.readyNodes();
    const archive = await peekArchive(call.req, 'image archive', false);
    await this.relay(call, this.teed(call, nodes, archive), {
      progress: (node, m) =>
        typeof m.stream === 'string'
          ? { ...m, stream: `${node.name}: ${m.stream}` }
          : { ...m, id: node.name, status: describe(m) },
      failed: (node, message) => ({ stream: `${node.name}: ${message}\n` }),
    });
  }

  // ---- docker import: as load (classic Swarm imported on every engine), or a URL each engine fetches ----

  private async importImage(call: Call, source: string): Promise<void> {
    const nodes = await this.readyNodes();
    let answers: Promise<NodeAnswer>[];
    if (source === '-') {
      const archive = await peekArchive(call.req, 'image archive', false);
      answers = this.teed(call, nodes, archive);
    } else {
      const headers = forwardableHeaders(call.req.headers);
      delete headers['content-length'];
      const path = `${call.prefix}${call.path}${call.search}`;
      answers = nodes.map((node) => this.send(node, path, headers, undefined, call.signal));
    }
    // The engine's last line is the new image's id: each node's, named.
    await this.relay(call, answers, {
      progress: (node, m) => ({ ...m, id: node.name, status: describe(m) }),
      failed: (node, message) => ({ status: message, progressDetail: {}, id: node.name }),
    });
  }

  /** The call's archive teed to every node as it arrives; each node's answer. */
  private teed(call: Call, nodes: ClusterNode[], archive: Readable): Promise<NodeAnswer>[] {
    const headers = forwardableHeaders(call.req.headers);
    const branches = nodes.map(() => new PassThrough({ highWaterMark: 1024 * 1024 }));
    const tee = new Tee(archive, branches);
    const answers = nodes.map((node, i) =>
      this.send(node, `${call.prefix}${call.path}${call.search}`, headers, branches[i], call.signal).then(
        (answer) => {
          // An engine that answered with an error, or has finished answering, reads no more.
          if (answer.response?.statusCode !== 200) tee.drop(branches[i]);
          else answer.response.on('close', () => tee.drop(branches[i]));
          return answer;
        },
      ),
    );
    tee.start();
    return answers;
  }

  // ---- docker save: from one node that holds every named image ----

  async save(call: Call): Promise<void> {
    await this.gw.require(call, 'Image Save', '/');
    const names = new URLSearchParams(call.search).getAll('names').filter((n) => n !== '');
    if (names.length === 0) throw badRequest('names is required: the images to save');
    const nodes = await this.readyNodes();
    const holders = await Promise.all(
      nodes.map(async (node) => {
        for (const name of names) {
          const answer = await this.gw.pool
            .json(node, 'GET', `/images/${encodeURIComponent(name)}/json`, undefined, 10_000)
            .catch(() => undefined);
          if (answer?.status !== 200) return undefined;
        }
        return node;
      }),
    );
    const holder = holders.find((n): n is ClusterNode => n !== undefined);
    if (!holder) throw notFound(`Unable to find a node containing all images: ${names.join(', ')}`);
    const upstream = await this.gw.pool.send(
      holder,
      'GET',
      `${call.prefix}${call.path}${call.search}`,
      forwardableHeaders(call.req.headers),
      undefined,
      call.signal,
    );
    await this.pipeBack(call, holder, upstream, 502);
  }

  // ---- shared ----

  private async readyNodes(): Promise<ClusterNode[]> {
    const nodes = await this.gw.cluster.readyNodes();
    if (nodes.length === 0) throw new DockerApiError(503, 'no node is available');
    return nodes;
  }

  private send(
    node: ClusterNode,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Readable | undefined,
    signal: AbortSignal,
  ): Promise<NodeAnswer> {
    return this.gw.pool.send(node, 'POST', path, headers, body, signal).then(
      (response) => ({ node, response }),
      (error: unknown) => ({ node, error: error as Error }),
    );
  }

  /**
   * One engine's answer piped back with backpressure. An engine error before anything was sent is
   * the caller's when 4xx; a 5xx is answered with `serverError` (502: a failing node, named).
   */
  private async pipeBack(
    call: Call,
    node: ClusterNode,
    upstream: IncomingMessage,
    serverError: 400 | 502,
  ): Promise<void> {
    const status = upstream.statusCode ?? 502;
    if (status >= 500) {
      const message = await engineMessage(upstream);
      throw new DockerApiError(serverError, serverError === 502 ? `node ${node.name}: ${message}` : message);
    }
    const { res } = call;
    res.statusCode = status;
    for (const name of ['content-type', 'content-length', 'content-disposition']) {
      const value = upstream.headers[name];
      if (value !== undefined) res.setHeader(name, value);
    }
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    await new Promise<void>((resolve) => {
      upstream.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) upstream.pause();
      });
      res.on('drain', () => upstream.resume());
      upstream.on('end', () => {
        res.end();
        resolve();
      });
      // A stream cut short must not look complete to the CLI.
      upstream.on('error', () => {
        res.destroy();
        resolve();
      });
      upstream.on('aborted', () => {
        res.destroy();
        resolve();
      });
      res.on('close', () => {
        upstream.destroy();
        resolve();
      });
    });
  }

  /**
   * Merges several nodes' JSON progress streams into one, line by line, as they arrive. The status
   * waits for every node's first answer: when none could start, the call fails as one engine
   * would (4xx as given, 5xx as 502), else it is 200 and each node's failure becomes a line of its
   * own and, at the end, one error message, so the CLI reports it and exits non-zero.
   */
  private async relay(call: Call, pending: Promise<NodeAnswer>[], format: ProgressFormat): Promise<void> {
    const { res } = call;
    const failures: { node: ClusterNode; status: number; message: string }[] = [];
    const live = new Set<IncomingMessage>();
    const held: string[] = [];
    let started = false;
    let paused = false;
    let open = 0;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const emit = (message: Message) => {
      const line = `${JSON.stringify(message)}\n`;
      if (!started) {
        held.push(line);
        return;
      }
      if (res.writableEnded || res.destroyed) return;
      if (!res.write(line) && !paused) {
        paused = true;
        for (const upstream of live) upstream.pause();
      }
    };
    const fail = (node: ClusterNode, status: number, message: string) => {
      failures.push({ node, status, message });
      emit(format.failed(node, message));
    };
    const closeOne = () => {
      if (--open === 0 && started) finish();
    };
    res.on('drain', () => {
      paused = false;
      for (const upstream of live) upstream.resume();
    });
    res.on('close', () => {
      for (const upstream of live) upstream.destroy();
      finish();
    });

    // Each node's stream is read from its first byte on (held until the status is known), so no
    // engine ever waits on another.
    await Promise.all(
      pending.map(async (answering) => {
        const { node, response, error } = await answering;
        if (!response) return fail(node, 502, error?.message ?? 'no answer');
        if (response.statusCode !== 200) {
          return fail(node, response.statusCode ?? 502, await engineMessage(response));
        }
        open++;
        live.add(response);
        if (format.started) emit(format.started(node));
        let rest = '';
        let failed = false;
        const line = (text: string) => {
          if (!text.trim()) return;
          let message: unknown;
          try {
            message = JSON.parse(text);
          } catch {
            return;
          }
          if (!isObject(message)) return;
          const error = errorOf(message);
          if (error !== undefined) {
            failed = true;
            fail(node, 500, error);
          } else emit(format.progress(node, message));
        };
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          const lines = (rest + chunk).split('\n');
          rest = lines.pop() ?? '';
          for (const text of lines) line(text);
        });
        const end = (cutShort: boolean) => {
          if (!live.delete(response)) return;
          line(rest);
          if (cutShort && !failed) fail(node, 502, `the connection to node ${node.name} was lost`);
          closeOne();
        };
        response.on('end', () => end(false));
        response.on('aborted', () => end(true));
        response.on('error', () => end(true));
        response.on('close', () => end(!response.complete));
      }),
    );
    if (open === 0 && failures.length > 0) {
      const status = failures.every((f) => f.status < 500) ? failures[0].status : 502;
      throw new DockerApiError(status, summarise(failures));
    }
    started = true;
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    for (const line of held.splice(0)) res.write(line);
    if (open === 0) finish();
    await done;
    if (res.writableEnded || res.destroyed) return;
    if (failures.length > 0) {
      const message = summarise(failures);
      res.write(`${JSON.stringify({ errorDetail: { message }, error: message })}\n`);
    }
    res.end();
  }
}

/** A progress message's text: "<layer>: <status>", or the status alone. */
function describe(message: Message): string {
  const status = typeof message.status === 'string' ? message.status : '';
  return typeof message.id === 'string' && message.id !== '' ? `${message.id}: ${status}` : status;
}

function errorOf(message: Message): string | undefined {
  const detail = isObject(message.errorDetail) ? message.errorDetail.message : undefined;
  if (typeof detail === 'string') return detail;
  if (typeof message.error === 'string') return message.error;
  return undefined;
}

/** One message for several nodes' failures: the message alone when they all agree. */
function summarise(failures: { node: ClusterNode; message: string }[]): string {
  const distinct = new Set(failures.map((f) => f.message));
  if (distinct.size === 1) return failures[0].message;
  return failures.map((f) => `${f.node.name}: ${f.message}`).join('; ');
}

async function engineMessage(response: IncomingMessage): Promise<string> {
  const body = await readAll(response, 64 * 1024).catch(() => Buffer.alloc(0));
  try {
    const parsed = JSON.parse(body.toString('utf8')) as unknown;
    if (isObject(parsed) && typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  return body.toString('utf8').trim() || `engine answered ${response.statusCode ?? 'nothing'}`;
}

/**
 * Classic Swarm's build scheduling: `--build-arg constraint:node==name` (the CLI sends it as the
 * arg "constraint:node" with the value "=name"), removed from the args the build sees, and the
 * com.docker.swarm.constraints label as for `docker run`. Rewrites `buildargs` in the query.
 */
function buildConstraints(query: URLSearchParams): Constraint[] {
  const constraints: Constraint[] = [];
  const rawArgs = query.get('buildargs');
  if (rawArgs !== null && rawArgs !== '') {
    let args: unknown;
    try {
      args = JSON.parse(rawArgs);
    } catch (error) {
      throw badRequest(`invalid buildargs: ${(error as Error).message}`);
    }
    if (!isObject(args) || Object.values(args).some((v) => v !== null && typeof v !== 'string'))
      throw badRequest('buildargs must be a JSON object of strings');
    const kept: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(args)) {
      if (key.startsWith(CONSTRAINT_ARG))
        constraints.push(parseConstraint(`${key.slice(CONSTRAINT_ARG.length)}=${(value as string) ?? ''}`));
      else kept[key] = value;
    }
    query.set('buildargs', JSON.stringify(kept));
  }
  const rawLabels = query.get('labels');
  if (rawLabels !== null && rawLabels !== '') {
    let labels: unknown;
    try {
      labels = JSON.parse(rawLabels);
    } catch (error) {
      throw badRequest(`invalid labels: ${(error as Error).message}`);
    }
    constraints.push(...extractConstraints(undefined, labelsField(labels, 'labels')).constraints);
  }
  return constraints;
}

/** Compressed streams the engines unpack themselves (gzip, bzip2, xz, zstd). */
function compressed(head: Buffer): boolean {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  return (
    starts(0x1f, 0x8b) ||
    starts(0x42, 0x5a, 0x68) ||
    starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00) ||
    starts(0x28, 0xb5, 0x2f, 0xfd)
  );
}

/** A tar header block: its checksum field matches the block (an all-zero block ends an archive). */
function tarHeader(block: Buffer): boolean {
  if (block.length < TAR_BLOCK) return false;
  if (block.subarray(0, TAR_BLOCK).every((b) => b === 0)) return true;
  const field = block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === parseInt(field, 8);
}

/**
 * Reads the first block of a request body to check it is an archive, then gives the whole body
 * back as a stream (the block, then the rest as it comes). Empty bodies are allowed only when the
 * engine fetches the context itself (`remote`).
 */
async function peekArchive(req: IncomingMessage, what: string, mayBeEmpty: boolean): Promise<PassThrough> {
  const { head, ended } = await new Promise<{ head: Buffer; ended: boolean }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const stop = (ended: boolean) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (!ended) req.pause();
      resolve({ head: Buffer.concat(chunks), ended });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= TAR_BLOCK) stop(false);
    };
    const onEnd = () => stop(true);
    const onError = (error: Error) => reject(error);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
  if (head.length === 0 && !mayBeEmpty) throw badRequest(`a ${what} (a tar archive) is required`);
  if (head.length > 0 && !compressed(head) && !tarHeader(head)) {
    req.resume(); // drop the rest, so the client reads the answer
    throw badRequest(`the ${what} is not a tar archive (plain, or gzip, bzip2, xz or zstd compressed)`);
  }
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  if (head.length > 0) body.write(head);
  if (ended) body.end();
  else req.pipe(body);
  return body;
}

/** Reads and drops the rest of a body nobody will take, so the client still gets the answer. */
function discard(req: IncomingMessage, body: PassThrough): void {
  req.unpipe(body);
  body.destroy();
  req.resume();
}

/**
 * One source written to several branches: the source pauses while any branch is full and resumes
 * when all have drained, so the slowest engine sets the pace and nothing piles up in memory.
 */
class Tee {
  private readonly active: Set<PassThrough>;
  private readonly waiting = new Set<PassThrough>();

  constructor(
    private readonly source: Readable,
    branches: PassThrough[],
  ) {
    this.active = new Set(branches);
  }

  start(): void {
    this.source.on('data', (chunk: Buffer) => {
      for (const branch of this.active) {
        if (branch.write(chunk) || this.waiting.has(branch)) continue;
        this.waiting.add(branch);
        branch.once('drain', () => this.drained(branch));
      }
      if (this.waiting.size > 0) this.source.pause();
    });
    this.source.on('end', () => {
      for (const branch of this.active) branch.end();
    });
    this.source.on('error', (error) => {
      for (const branch of this.active) branch.destroy(error);
    });
    this.source.resume();
  }

  /** Stops feeding a branch whose engine gave up. */
  drop(branch: PassThrough): void {
    if (!this.active.delete(branch)) return;
    branch.destroy();
    this.drained(branch);
  }

  private drained(branch: PassThrough): void {
    if (this.waiting.delete(branch) && this.waiting.size === 0) this.source.resume();
  }
}
