import { Engine, demuxLogs, splitRef } from './engine.js';
import { EngineError, toEngineError } from './errors.js';

describe('toEngineError', () => {
  it('keeps the HTTP status and the engine message', () => {
    const err = toEngineError('inspect container x', {
      statusCode: 404,
      reason: 'no such container',
      json: { message: 'No such container: x' },
    });
    expect(err).toBeInstanceOf(EngineError);
    expect(err.statusCode).toBe(404);
    expect(err.notFound).toBe(true);
    expect(err.message).toBe('inspect container x: No such container: x');
  });

  it('maps connection failures to status 0', () => {
    const err = toEngineError('ping', Object.assign(new Error('connect ENOENT /x.sock'), { code: 'ENOENT' }));
    expect(err.statusCode).toBe(0);
    expect(err.unreachable).toBe(true);
    expect(err.message).toBe('ping: ENOENT: connect ENOENT /x.sock');
  });
});

describe('helpers', () => {
  it('splits image references, keeping registry ports', () => {
    expect(splitRef('orca/busybox:abc')).toEqual({ repo: 'orca/busybox', tag: 'abc' });
    expect(splitRef('localhost:5000/orca/busybox')).toEqual({
      repo: 'localhost:5000/orca/busybox',
      tag: 'latest',
    });
    expect(splitRef('localhost:5000/x:1')).toEqual({ repo: 'localhost:5000/x', tag: '1' });
  });

  it('de-frames multiplexed logs and passes TTY output through', () => {
    const frame = (stream: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = stream;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    expect(demuxLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]))).toBe('out\nerr\n');
    expect(demuxLogs(Buffer.from('plain tty output'))).toBe('plain tty output');
  });
});

describe('Engine', () => {
  it('reports an engine that is not there as unreachable', async () => {
    const engine = new Engine({ socketPath: '/nonexistent/orca-test.sock' });
    expect(await engine.ping()).toBe(false);
    await expect(engine.info()).rejects.toMatchObject({ name: 'EngineError', statusCode: 0 });
  });
});
