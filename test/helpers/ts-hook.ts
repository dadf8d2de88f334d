/** Runs TypeScript test children without ts-node: the `node -e` loader both child harnesses use. */

/** Registers a `.ts` loader built on typescript.transpileModule, then runs the script named in argv[1]. */
export const TS_HOOK = `
const fs = require('node:fs');
const ts = require(require.resolve('typescript', { paths: [process.cwd()] }));
require.extensions['.ts'] = (m, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  m._compile(out.outputText, filename);
};
require(process.argv[1]);
`;
