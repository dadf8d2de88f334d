/**
 * PVC annotations for --pvc-annotations: the error mapping with a stand-in CoreV1Api, and the real
 * @kubernetes/client-node getter (in a child process) against a local fake API server.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodedError, Status } from '../../src/errors';
import { pvcReadError, readPvcAnnotations } from '../../src/kube/pvc-annotations';
import { TS_HOOK } from '../helpers/ts-hook';

const AFF = 'cinder.csi.openstack.org/affinity';

async function codeOf(p: Promise<unknown>): Promise<CodedError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CodedError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('readPvcAnnotations with a stand-in API', () => {
  const reader = (fn: () => Promise<unknown>) => ({
    readNamespacedPersistentVolumeClaim: jest.fn(
      fn as () => Promise<{ metadata?: { annotations?: Record<string, string> } }>,
    ),
  });

  it('returns the annotations of the PVC asked for, and {} when it has none', async () => {
    const r = reader(async () => ({ metadata: { annotations: { [AFF]: 'vol-a' } } }));
    expect(await readPvcAnnotations(r, 'ns', 'data')).toEqual({ [AFF]: 'vol-a' });
    expect(r.readNamespacedPersistentVolumeClaim).toHaveBeenCalledWith({ name: 'data', namespace: 'ns' });
    expect(
      await readPvcAnnotations(
        reader(async () => ({ metadata: {} })),
        'ns',
        'data',
      ),
    ).toEqual({});
  });

  it.each([
    [404, Status.INVALID_ARGUMENT],
    [403, Status.FAILED_PRECONDITION],
    [401, Status.FAILED_PRECONDITION],
    [500, Status.UNAVAILABLE],
    [503, Status.UNAVAILABLE],
  ])('maps HTTP %i from the API to gRPC code %i, naming the PVC', async (httpCode, code) => {
    const e = await codeOf(
      readPvcAnnotations(
        reader(async () => Promise.reject(Object.assign(new Error(`HTTP-Code: ${httpCode}`), { code: httpCode }))),
        'ns',
        'data',
      ),
    );
    expect(e.code).toBe(code);
    expect(e.details).toContain('PVC ns/data');
  });

  it('maps an unreachable API to UNAVAILABLE', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.96.0.1:443'), { code: 'ECONNREFUSED' });
    const e = await codeOf(
      readPvcAnnotations(
        reader(async () => Promise.reject(refused)),
        'ns',
        'data',
      ),
    );
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.details).toContain('ECONNREFUSED');
  });

  it("gives up with DEADLINE_EXCEEDED when the call's signal fires first", async () => {
    const started = Date.now();
    const e = await codeOf(
      readPvcAnnotations(
        reader(() => new Promise(() => undefined)),
        'ns',
        'data',
        AbortSignal.timeout(50),
      ),
    );
    expect(e.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('passes a CodedError through unchanged', () => {
    const coded = new CodedError(Status.ABORTED, 'x');
    expect(pvcReadError(coded, 'ns', 'data')).toBe(coded);
  });
});

describe('kubePvcAnnotations on @kubernetes/client-node against a fake API server', () => {
  let server: Server;
  let dir: string;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/persistentvolumeclaims\/([^/?]+)/.exec(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      if (m && m[1] === 'team-a' && m[2] === 'data') {
        res.end(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            metadata: { name: 'data', namespace: 'team-a', annotations: { [AFF]: 'vol-a,vol-b' } },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          }),
        );
        return;
      }
      res.statusCode = 404;
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
          message: 'persistentvolumeclaims "x" not found',
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'pvc-annotations-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => server.close(r));
  });

  const kubeconfig = (url: string) => {
    const file = join(dir, `kubeconfig-${seen.length}-${Date.now()}`);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: t',
        'clusters:',
        '- name: t',
        '  cluster:',
        `    server: ${url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: t',
        '  user:',
        '    token: test-token',
        'contexts:',
        '- name: t',
        '  context:',
        '    cluster: t',
        '    user: t',
      ].join('\n'),
    );
    return file;
  };
  // Asynchronous: the fake API server answers from this process's event loop.
  const run = async (file: string, ...pvcs: string[]) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['-e', TS_HOOK, join(__dirname, 'pvc-annotations-child.ts'), file, ...pvcs],
      { encoding: 'utf8', timeout: 30_000 },
    );
    return stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { annotations?: Record<string, string>; code?: number; details?: string });
  };

  it("reads a PVC's annotations, and maps a missing PVC to INVALID_ARGUMENT naming it", async () => {
    const { port } = server.address() as AddressInfo;
    const [found, missing] = await run(kubeconfig(`http://127.0.0.1:${port}`), 'team-a/data', 'team-a/gone');
    expect(found).toEqual({ annotations: { [AFF]: 'vol-a,vol-b' } });
    expect(missing.code).toBe(Status.INVALID_ARGUMENT);
    expect(missing.details).toContain('PVC team-a/gone');
    expect(seen).toEqual([
      'GET /api/v1/namespaces/team-a/persistentvolumeclaims/data',
      'GET /api/v1/namespaces/team-a/persistentvolumeclaims/gone',
    ]);
  });

  it('maps an API server that refuses connections to UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise((r) => closed.close(r));
    const [down] = await run(kubeconfig(`http://127.0.0.1:${port}`), 'team-a/data');
    expect(down.code).toBe(Status.UNAVAILABLE);
    expect(down.details).toContain('PVC team-a/data');
    expect(down.details).toMatch(/ECONNREFUSED/);
  });
});
