import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tarFiles } from './tar.js';

describe('tarFiles', () => {
  it('writes an archive that GNU tar extracts with names, contents and modes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'orca-tar-'));
    try {
      writeFileSync(
        join(dir, 'a.tar'),
        tarFiles([
          { name: 'key.pem', content: 'secret\n', mode: 0o600 },
          { name: 'big.txt', content: 'x'.repeat(1300) },
        ]),
      );
      execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
      expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe('secret\n');
      expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, 'big.txt'), 'utf8')).toHaveLength(1300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses names that escape the target directory', () => {
    expect(() => tarFiles([{ name: '../etc/passwd', content: '' }])).toThrow('unsafe');
    expect(() => tarFiles([{ name: '/etc/passwd', content: '' }])).toThrow('unsafe');
  });
});
