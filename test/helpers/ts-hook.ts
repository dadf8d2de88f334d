/**
 * Runs TypeScript test children without ts-node: a `node -e` loader that registers a `.ts` loader built on
 * typescript.transpileModule, then runs the script named in argv[1]. It keeps a transpile cache: children
 * that tests start again and again would otherwise load typescript and transpile the plugin's hundred-odd
 * files on every start (about 8 s on a busy 2-core machine). Outputs are keyed by a hash of the file name and source, written whole
 * (rename) so concurrent children never read half a file; typescript is loaded only on a miss.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CACHE_DIR = join(tmpdir(), `cinder-csi-ts-cache-${process.getuid?.() ?? 'u'}`);

export const TS_HOOK = `
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const dir = ${JSON.stringify(CACHE_DIR)};
fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
let ts;
require.extensions['.ts'] = (m, filename) => {
  const src = fs.readFileSync(filename, 'utf8');
  const key = crypto.createHash('sha256').update(filename).update('\\0').update(src).digest('hex');
  const file = path.join(dir, key + '.js');
  let out;
  try {
    out = fs.readFileSync(file, 'utf8');
  } catch {
    ts ??= require(require.resolve('typescript', { paths: [process.cwd()] }));
    out = ts.transpileModule(src, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    const tmp = file + '.' + process.pid;
    fs.writeFileSync(tmp, out);
    fs.renameSync(tmp, file);
  }
  m._compile(out, filename);
};
require(process.argv[1]);
`;
