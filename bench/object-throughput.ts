/**
 * Object-volume throughput: a 256 MiB random file written and read sequentially through the driver's own FUSE
 * mounts (FuseSupervisor in-process, `mount` requests with the driver's mounter args, so its default options) with
 * s3fs and with rclone, against the same transfer with the S3 client library (minio: putObject from a stream,
 * getObject to a stream), same s3rver, same run, interleaved so all paths share the machine's noise; also rclone's
 * own client without a mount at the mount's S3 settings, to tell rclone's cost from its FUSE path's, and per path the
 * CPU of the daemon (or client) and of the server, the daemon's peak RSS and the FUSE request sizes
 * (bench/fuse-probe.ts). Optional: 1,000 small files.
 * s3rver runs in a child process so neither the client library nor the mount shares an event loop with it.
 * Run: `npm run bench:object` (root, /dev/fuse, s3fs and rclone installed). `--reps N` (default 3),
 * `--small N` (small-file count, default 1000; 0 skips), `--only s3fs|rclone`,
 * `--opts-s3fs k=v,...` / `--opts-rclone k=v,...` (extra allow-listed options for the default paths, to try knobs),
 * `--stock-s3fs k=v,...` / `--stock-rclone k=v,...` (the StorageClass mountOptions of the `-stock` paths; default
 * STOCK below; an empty list drops that path). Writes bench/results/object.json.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as Minio from 'minio';
import { FuseSupervisor } from '../src/fuse/supervisor';
import { credentialFileContent, daemonCommand, RCLONE_REMOTE } from '../src/fuse/mounter-args';
import { execFile } from '../src/mount/exec';
import { InProcessFuseMounts } from '../src/fuse/supervisor-client';
import type { MounterName, MountSpec } from '../src/fuse/protocol';
import { createLogger } from '../src/log';
import { startS3ServerProcess } from '../src/demo/local-s3';
import {
  daemonPidOf,
  FuseRequestTrace,
  type FuseRequestStats,
  processCpuMs,
  processPeakRssMiB,
  reapedChildrenCpuMs,
} from './fuse-probe';

const MIB = 1024 * 1024;
const SIZE = 256 * MIB;
const CHUNK = 4 * MIB;
/** s3rver's bucket; with `--server` one named after this process, created and removed by the run. */
let BUCKET = 'bench';
let REGION = 'us-east-1';
const MOUNTERS: MounterName[] = ['s3fs', 'rclone'];

/**
 * minio: putObject from a stream (single PUT); minio-mp: the same data as multipart, s3fs's default 10 MiB x 5 parallel;
 * s3fs / rclone: the driver's defaults; `-stock`: the same mounter with the mounter's own defaults restored through
 * StorageClass mountOptions (what the driver's defaults buy, in the same run).
 */
type MountPath = MounterName | 's3fs-stock' | 'rclone-stock' | 'rclone-cached';
/**
 * rclone's own S3 client without FUSE (`rclone copyto` from a local file, `rclone hashsum sha256 --download`) with
 * the config file and S3 flags the `rclone` mount path gets (the driver's defaults plus `--opts-rclone`'s `s3-*`):
 * what rclone costs by itself, apart from its mount.
 */
type CliPath = 'rclone-cli';
type PathName = 'minio' | 'minio-mp' | MountPath | CliPath;
/** The mounters' own defaults (s3fs 1.90, rclone 1.60), set over the driver's through StorageClass mountOptions. */
const STOCK: Record<MounterName, string[]> = {
  s3fs: ['multipart_size=10', 'parallel_count=5'],
  rclone: ['s3-upload-cutoff=200M'],
};
const mounterOf = (p: MountPath): MounterName => (p.startsWith('s3fs') ? 's3fs' : 'rclone');
const MP_PART = 10 * MIB;
const MP_PARALLEL = 5;
interface Sample {
  path: PathName;
  rep: number;
  /** Until the last write() returned (data handed to the mount or the client); the rest of writeMs is fsync + close. */
  copyMs: number;
  /** Until the writer's close() returned (fsync included for the mounts). */
  writeMiBs: number;
  /** Until the whole object was on the server (same as writeMiBs unless the mounter uploads after close). */
  writeOnServerMiBs: number;
  readMiBs: number;
  writeMs: number;
  onServerMs: number;
  readMs: number;
  /**
   * CPU ms of whatever moved the data on the client side: the FUSE daemon (from its mount to the object on the server,
   * and from its mount to the last byte read), rclone's CLI process, or this process for the S3 library.
   */
  clientCpuWriteMs?: number;
  clientCpuReadMs?: number;
  /** CPU ms of the S3 server over the same spans. */
  serverCpuWriteMs?: number;
  serverCpuReadMs?: number;
  /** FUSE requests the kernel sent the daemon (mount paths, when tracefs is there). */
  fuseWrite?: FuseRequestStats;
  /** The daemon's peak RSS (VmHWM, MiB) by the end of the write (upload included) and of the read. */
  daemonPeakWriteMiB?: number;
  daemonPeakReadMiB?: number;
  fuseRead?: FuseRequestStats;
}

/** `--opts-s3fs a=1,b` / `--opts-rclone ...`: extra allow-listed mount options, for trying knobs (default: none). */
function extraOptions(m: MounterName): string[] {
  const i = process.argv.indexOf(`--opts-${m}`);
  return i >= 0 ? process.argv[i + 1].split(',').filter(Boolean) : [];
}

function stockOptions(m: MounterName): string[] {
  const i = process.argv.indexOf(`--stock-${m}`);
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : STOCK[m];
}

const optionsOf = (p: MountPath): string[] =>
  p.endsWith('-stock')
    ? stockOptions(mounterOf(p))
    : p === 'rclone-cached'
      ? [...extraOptions('rclone').filter((o) => !o.startsWith('vfs-cache-mode')), 'vfs-cache-mode=full']
      : extraOptions(mounterOf(p));

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const source = (buf: Buffer) =>
  Readable.from(
    (function* () {
      for (let o = 0; o < buf.length; o += CHUNK) yield buf.subarray(o, Math.min(o + CHUNK, buf.length));
    })(),
    { objectMode: false },
  );

async function dropCaches(): Promise<void> {
  await writeFile('/proc/sys/vm/drop_caches', '3');
}

/** b - a, or undefined when either probe failed. */
const since = (b: number | undefined, a: number | undefined) =>
  a === undefined || b === undefined ? undefined : b - a;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const mibs = (bytes: number, ms: number) => bytes / MIB / (ms / 1000);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * For `rclone-cached`: the file is read once through the mount (`vfs-cache-mode=full` keeps it in rclone's cache
 * dir), the page cache dropped, and that cache file read straight from disk into it, so the timed read that follows costs
 * only rclone's FUSE path: no S3 request and no disk read.
 */
async function warmRcloneCache(pid: number | undefined, target: string, key: string): Promise<void> {
  await sha256Stream(createReadStream(join(target, key), { highWaterMark: CHUNK }));
  const argv = pid === undefined ? [] : readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const cacheDir = argv[argv.indexOf('--cache-dir') + 1];
  const find = async (d: string): Promise<string | undefined> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isFile() && e.name === key && !p.includes('/vfsMeta/')) return p;
      if (e.isDirectory()) {
        const f = await find(p);
        if (f) return f;
      }
    }
    return undefined;
  };
  const cached = cacheDir && argv.includes('--cache-dir') ? await find(cacheDir) : undefined;
  if (!cached) throw new Error(`rclone-cached: ${key} is not in rclone's cache dir`);
  // The read through the mount left its pages in the mount's page cache; the timed read must reach the daemon.
  await dropCaches();
  await readFile(cached);
}

function externalServer(file: string): Awaited<ReturnType<typeof startS3ServerProcess>> {
  const j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  REGION = j.s3_region ?? REGION;
  return {
    endpoint: j.s3_endpoint,
    accessKey: j.access,
    secretKey: j.secret,
    directory: '',
    stop: async () => undefined,
  };
}

async function waitOnServer(client: Minio.Client, key: string, size: number, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await client.statObject(BUCKET, key)).size === size) return;
    } catch {
      /* not there yet */
    }
    if (Date.now() > end) throw new Error(`${key} did not reach ${size} bytes on the server`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function sha256Stream(stream: Readable): Promise<{ hash: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hash: h.digest('hex'), bytes };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (FUSE mounts, drop_caches)');
  const reps = arg('--reps', 3);
  const smallCount = arg('--small', 1000);
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] as MounterName) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bench-object-'));
  const kubeletDir = join(dir, 'kubelet');
  mkdirSync(kubeletDir);
  const loadAtStart = loadavg();
  const log = createLogger({ level: 'warn' });
  // `--server <json>` (`s3_endpoint`, `s3_region`, `access`, `secret`: openstack-loopback's ec2.json) measures against
  // that S3 server instead of a local s3rver, in a bucket of its own; its CPU is not measured then.
  const serverAt = process.argv.indexOf('--server');
  const external = serverAt >= 0;
  const server = external ? externalServer(process.argv[serverAt + 1]) : await startS3ServerProcess();
  if (external) BUCKET = `bench-object-${process.pid}`;
  const ep = new URL(server.endpoint);
  const client = new Minio.Client({
    endPoint: ep.hostname,
    port: Number(ep.port),
    useSSL: false,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    region: REGION,
    pathStyle: true,
    // A part size above the object's: putObject of a stream becomes one PUT. Its multipart path (64 MiB parts)
    // first calls ListMultipartUploads, which s3rver 3.7.1 answers NotImplemented; minio-mp measures multipart.
    partSize: 512 * MIB,
  });
  // One tracefs instance for the run, stopped (and removed) in the finally below should a run fail mid-trace.
  const trace = new FuseRequestTrace('bench-object');
  const serverCpu = () => (server.pid === undefined ? undefined : processCpuMs(server.pid));
  const supervisor = new FuseSupervisor({
    stateDir: join(dir, 'state'),
    kubeletDir,
    log,
    // No liveness probes unless `--liveness`: with them, s3fs's upload of 10 MiB parts (`s3fs-stock`) failed the
    // bench's fsync or close with EIO in 5 of 9 runs (s3fs then tried an abort s3rver refuses), once after the 3 s
    // statfs probe found s3fs hung mid-upload and replaced it (ECONNABORTED; a daemon that is busy is now left
    // alone, src/fuse/daemon-activity.ts); without them in none of 6. The bench measures the data path; replacing
    // hung daemons is test/fuse/hung-mount.root.test.ts's.
    livenessIntervalMs: process.argv.includes('--liveness') ? undefined : 3_600_000,
  });
  await supervisor.start();
  const fuse = new InProcessFuseMounts(supervisor);
  const creds = { kind: 's3' as const, accessKeyId: server.accessKey, secretAccessKey: server.secretKey };
  let seq = 0;
  function spec(path: MountPath): MountSpec {
    seq++;
    return {
      volumeId: `bench-${path}-${seq}`,
      // A new target per mount: a fresh daemon and, for rclone, a fresh VFS cache (a read-back must not come from it).
      target: join(kubeletDir, `pods/bench/volumes/kubernetes.io~csi/${path}-${seq}/mount`),
      mounter: mounterOf(path),
      provider: 's3',
      bucket: BUCKET,
      prefix: '',
      endpoint: server.endpoint,
      region: REGION,
      pathStyle: true,
      options: optionsOf(path),
      readOnly: false,
    };
  }
  const mounted = new Set<string>();
  const mount = async (m: MountPath) => {
    const s = spec(m);
    await fuse.mount(s, creds);
    mounted.add(s.target);
    return s.target;
  };
  const unmount = async (t: string) => {
    await fuse.unmount(t);
    mounted.delete(t);
  };

  const samples: Sample[] = [];
  const small: Array<Record<string, number | string>> = [];
  try {
    await client.makeBucket(BUCKET, REGION);
    const data = randomBytes(SIZE);
    const want = createHash('sha256').update(data).digest('hex');
    const srcFile = join(dir, 'src.bin');
    const cliConf = join(dir, 'rclone-cli.conf');
    if (!only || only === 'rclone') {
      writeFileSync(srcFile, data);
      writeFileSync(cliConf, credentialFileContent({ ...spec('rclone'), volumeId: 'bench-cli' }, creds), {
        mode: 0o600,
      });
    }
    const cliEnv: NodeJS.ProcessEnv = { ...process.env, AWS_CA_BUNDLE: undefined, RCLONE_CONFIG: undefined };

    const runOne = async (path: PathName, rep: number) => {
      const key = `big-${path}-${rep}.bin`;
      let writeMs: number;
      let copyMs: number;
      let onServerMs: number;
      let readMs: number;
      let got: { hash: string; bytes: number };
      const cpu: Partial<Sample> = {};
      if (path === 'minio') {
        await dropCaches();
        const c0 = process.cpuUsage();
        const s0 = serverCpu();
        const t0 = performance.now();
        await client.putObject(BUCKET, key, source(data), SIZE);
        writeMs = onServerMs = copyMs = performance.now() - t0;
        cpu.clientCpuWriteMs = cpuMs(process.cpuUsage(c0));
        cpu.serverCpuWriteMs = since(serverCpu(), s0);
        await dropCaches();
        const c1 = process.cpuUsage();
        const s1 = serverCpu();
        const t1 = performance.now();
        got = await sha256Stream(await client.getObject(BUCKET, key));
        readMs = performance.now() - t1;
        cpu.clientCpuReadMs = cpuMs(process.cpuUsage(c1));
        cpu.serverCpuReadMs = since(serverCpu(), s1);
      } else if (path === 'minio-mp') {
        await dropCaches();
        const t0 = performance.now();
        const uploadID = await client.initiateNewMultipartUpload(BUCKET, key, {});
        const parts: Array<{ part: number; etag: string }> = [];
        let next = 0;
        const worker = async () => {
          for (;;) {
            const i = next++;
            if (i * MP_PART >= SIZE) return;
            const chunk = data.subarray(i * MP_PART, Math.min((i + 1) * MP_PART, SIZE));
            const r = await client.uploadPart(
              {
                bucketName: BUCKET,
                objectName: key,
                uploadID,
                partNumber: i + 1,
                headers: { 'Content-Length': chunk.length },
              },
              chunk,
            );
            parts.push({ part: i + 1, etag: r.etag });
          }
        };
        await Promise.all(Array.from({ length: MP_PARALLEL }, worker));
        parts.sort((a, b) => a.part - b.part);
        await client.completeMultipartUpload(BUCKET, key, uploadID, parts);
        writeMs = onServerMs = copyMs = performance.now() - t0;
        await dropCaches();
        const t1 = performance.now();
        got = await sha256Stream(await client.getObject(BUCKET, key));
        readMs = performance.now() - t1;
      } else if (path === 'rclone-cli') {
        const mountArgs = daemonCommand(spec('rclone'), { credentialFile: cliConf, cacheDir: dir }).args;
        const flags = mountArgs.filter((a) => a.startsWith('--s3-'));
        const rclone = (args: string[]) =>
          execFile('rclone', ['--config', cliConf, ...args, ...flags], { env: cliEnv, timeoutMs: 300_000 });
        const remote = `${RCLONE_REMOTE}:${BUCKET}/${key}`;
        await dropCaches();
        // The mounts and the client write from memory: the source file is read once so rclone reads it from page cache.
        await readFile(srcFile);
        const c0 = reapedChildrenCpuMs();
        const s0 = serverCpu();
        const t0 = performance.now();
        await rclone(['copyto', srcFile, remote]);
        writeMs = onServerMs = copyMs = performance.now() - t0;
        cpu.clientCpuWriteMs = reapedChildrenCpuMs() - c0;
        cpu.serverCpuWriteMs = since(serverCpu(), s0);
        await dropCaches();
        const c1 = reapedChildrenCpuMs();
        const s1 = serverCpu();
        const t1 = performance.now();
        const out = await rclone(['hashsum', 'sha256', '--download', remote]);
        readMs = performance.now() - t1;
        cpu.clientCpuReadMs = reapedChildrenCpuMs() - c1;
        cpu.serverCpuReadMs = since(serverCpu(), s1);
        got = { hash: out.stdout.trim().split(/\s+/)[0], bytes: (await client.statObject(BUCKET, key)).size };
      } else {
        const wt = await mount(path);
        const wpid = daemonPidOf(wt);
        await dropCaches();
        trace.start(wt);
        const d0 = wpid === undefined ? undefined : processCpuMs(wpid);
        const s0 = serverCpu();
        const t0 = performance.now();
        const fh = await open(join(wt, key), 'w');
        try {
          const ws = createWriteStream('', { fd: fh.fd, autoClose: false, highWaterMark: CHUNK });
          await pipeline(source(data), ws);
          copyMs = performance.now() - t0;
          await fh.sync();
        } catch (e) {
          // A FileHandle left to the garbage collector aborts the process when its close fails, hiding this error.
          await fh.close().catch(() => undefined);
          throw e;
        }
        await fh.close();
        writeMs = performance.now() - t0;
        await waitOnServer(client, key, SIZE);
        onServerMs = performance.now() - t0;
        cpu.clientCpuWriteMs = since(wpid === undefined ? undefined : processCpuMs(wpid), d0);
        cpu.serverCpuWriteMs = since(serverCpu(), s0);
        cpu.fuseWrite = trace.stop();
        cpu.daemonPeakWriteMiB = wpid === undefined ? undefined : processPeakRssMiB(wpid);
        await unmount(wt);
        const rt = await mount(path);
        const rpid = daemonPidOf(rt);
        await dropCaches();
        if (path === 'rclone-cached') await warmRcloneCache(rpid, rt, key);
        trace.start(rt);
        const d1 = rpid === undefined ? undefined : processCpuMs(rpid);
        const s1 = serverCpu();
        const t1 = performance.now();
        got = await sha256Stream(createReadStream(join(rt, key), { highWaterMark: CHUNK }));
        readMs = performance.now() - t1;
        cpu.clientCpuReadMs = since(rpid === undefined ? undefined : processCpuMs(rpid), d1);
        cpu.serverCpuReadMs = since(serverCpu(), s1);
        cpu.fuseRead = trace.stop();
        cpu.daemonPeakReadMiB = rpid === undefined ? undefined : processPeakRssMiB(rpid);
        await unmount(rt);
      }
      if (got.bytes !== SIZE || got.hash !== want)
        throw new Error(`${path} rep ${rep}: read-back mismatch (${got.bytes} bytes)`);
      await client.removeObject(BUCKET, key);
      const s: Sample = {
        path,
        rep,
        copyMs,
        writeMs,
        onServerMs,
        readMs,
        writeMiBs: mibs(SIZE, writeMs),
        writeOnServerMiBs: mibs(SIZE, onServerMs),
        readMiBs: mibs(SIZE, readMs),
        ...cpu,
      };
      samples.push(s);
      console.log(
        `rep ${rep} ${path.padEnd(16)} write ${s.writeMiBs.toFixed(1)} MiB/s (write() calls ${Math.round(copyMs)} ms, fsync+close ${Math.round(writeMs - copyMs)} ms, on server ${s.writeOnServerMiBs.toFixed(1)}), read ${s.readMiBs.toFixed(1)} MiB/s, sha256 ok`,
      );
    };

    const order = (
      ['minio', 's3fs', 'minio-mp', 'rclone', 's3fs-stock', 'rclone-cli', 'rclone-stock', 'rclone-cached'] as PathName[]
    ).filter((p) => !p.endsWith('-stock') || stockOptions(p.startsWith('s3fs') ? 's3fs' : 'rclone').length > 0);
    for (let rep = 1; rep <= reps; rep++) {
      // Rotate the order so no path always runs first (or right after the same neighbour).
      for (let i = 0; i < order.length; i++) {
        const p = order[(i + rep - 1) % order.length];
        if (only && p !== 'minio' && !p.startsWith(only)) continue;
        await runOne(p, rep);
      }
    }

    if (smallCount > 0) {
      const body = randomBytes(4096);
      const timeIt = async (fn: () => Promise<unknown>) => {
        const t = performance.now();
        await fn();
        return Math.round(performance.now() - t);
      };
      const names = Array.from({ length: smallCount }, (_, i) => `f${String(i).padStart(5, '0')}`);
      {
        const p = 'small-minio/';
        const row: Record<string, number | string> = { path: 'minio', files: smallCount };
        row.createMs = await timeIt(async () => {
          for (const n of names) await client.putObject(BUCKET, p + n, body, body.length);
        });
        row.listMs = await timeIt(async () => {
          const listed: string[] = [];
          for await (const o of client.listObjects(BUCKET, p, true)) listed.push(o.name as string);
          if (listed.length !== smallCount) throw new Error(`minio listed ${listed.length}`);
        });
        row.readMs = await timeIt(async () => {
          for (const n of names) await sha256Stream(await client.getObject(BUCKET, p + n));
        });
        row.deleteMs = await timeIt(async () => {
          for (let i = 0; i < names.length; i += 1000)
            await client.removeObjects(
              BUCKET,
              names.slice(i, i + 1000).map((n) => p + n),
            );
        });
        small.push(row);
        console.log(`small ${JSON.stringify(row)}`);
      }
      for (const m of MOUNTERS) {
        if (only && m !== only) continue;
        const t = await mount(m);
        const d = join(t, `small-${m}`);
        const row: Record<string, number | string> = { path: m, files: smallCount };
        row.createMs = await timeIt(async () => {
          await writeFile(join(t, `small-${m}.keep`), '');
          await rm(join(t, `small-${m}.keep`));
          mkdirSync(d);
          for (const n of names) await writeFile(join(d, n), body);
        });
        row.listMs = await timeIt(async () => {
          const l = await readdir(d, { withFileTypes: true });
          if (l.length !== smallCount) throw new Error(`${m} listed ${l.length}`);
        });
        row.readMs = await timeIt(async () => {
          for (const n of names) if (!(await readFile(join(d, n))).equals(body)) throw new Error(`${m} ${n} differs`);
        });
        row.deleteMs = await timeIt(() => rm(d, { recursive: true }));
        await unmount(t);
        small.push(row);
        console.log(`small ${JSON.stringify(row)}`);
      }
    }
  } finally {
    trace.stop();
    for (const t of [...mounted]) await fuse.unmount(t).catch((e) => console.error(`unmount ${t}: ${e}`));
    supervisor.stop();
    if (external) {
      const left: string[] = [];
      for await (const o of client.listObjects(BUCKET, '', true)) left.push(o.name as string);
      if (left.length) await client.removeObjects(BUCKET, left);
      await client.removeBucket(BUCKET).catch((e) => console.error(`remove bucket ${BUCKET}: ${e}`));
    }
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const paths = (
    ['minio', 'minio-mp', 's3fs', 's3fs-stock', 'rclone', 'rclone-stock', 'rclone-cli', 'rclone-cached'] as PathName[]
  ).filter((p) => samples.some((x) => x.path === p));
  const med = Object.fromEntries(
    paths.map((p) => {
      const s = samples.filter((x) => x.path === p);
      return [
        p,
        {
          write: median(s.map((x) => x.writeMiBs)),
          writeOnServer: median(s.map((x) => x.writeOnServerMiBs)),
          read: median(s.map((x) => x.readMiBs)),
        },
      ];
    }),
  ) as Record<PathName, { write: number; writeOnServer: number; read: number }>;
  const pad = (v: string | number, n: number) => (typeof v === 'number' ? v.toFixed(1) : v).padEnd(n);
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(`\n256 MiB sequential, median of ${reps} (MiB/s); ratio = path / minio, target >= 0.80`);
  for (const m of MOUNTERS)
    if (paths.includes(`${m}-stock`)) console.log(`${m}-stock mountOptions: ${stockOptions(m).join(',')}`);
  console.log(
    `${pad('path', 18)}${pad('write', 9)}${pad('on server', 11)}${pad('read', 9)}${pad('w ratio', 9)}${pad('w-srv ratio', 13)}r ratio`,
  );
  for (const p of paths) {
    const m = med[p];
    console.log(
      `${pad(p, 18)}${pad(m.write, 9)}${pad(m.writeOnServer, 11)}${pad(m.read, 9)}${pad(ratio(m.write, med.minio.write), 9)}${pad(ratio(m.writeOnServer, med.minio.write), 13)}${ratio(m.read, med.minio.read)}`,
    );
  }
  console.log(
    `\nCPU seconds per GiB moved (median; client = the FUSE daemon, rclone's CLI, or this process for the library;` +
      ` a read's includes sha256 for minio and the CLI, not for the mounts) and FUSE requests (count x mean KiB)`,
  );
  console.log(
    `${pad('path', 18)}${pad('client w', 10)}${pad('client r', 10)}${pad('server w', 10)}${pad('server r', 10)}${pad('FUSE writes', 16)}${pad('FUSE reads', 16)}daemon peak RSS MiB w / r`,
  );
  const gib = SIZE / (1024 * MIB);
  const perGib = (xs: Array<number | undefined>) => {
    const v = xs.filter((x): x is number => x !== undefined);
    return v.length ? (median(v) / 1000 / gib).toFixed(2) : '-';
  };
  const reqs = (xs: Array<FuseRequestStats | undefined>, n: 'reads' | 'writes', b: 'readBytes' | 'writeBytes') => {
    const v = xs.filter((x): x is FuseRequestStats => x !== undefined && x[n] > 0);
    if (!v.length) return '-';
    const count = median(v.map((x) => x[n]));
    const kib = median(v.map((x) => x[b] / x[n] / 1024));
    return `${Math.round(count)} x ${Math.round(kib)}${v.some((x) => x.lost > 0) ? ' (lost)' : ''}`;
  };
  const peak = (xs: Array<number | undefined>) => {
    const v = xs.filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v).toFixed(0) : '-';
  };
  for (const p of paths) {
    const s = samples.filter((x) => x.path === p);
    console.log(
      `${pad(p, 18)}${pad(perGib(s.map((x) => x.clientCpuWriteMs)), 10)}${pad(perGib(s.map((x) => x.clientCpuReadMs)), 10)}` +
        `${pad(perGib(s.map((x) => x.serverCpuWriteMs)), 10)}${pad(perGib(s.map((x) => x.serverCpuReadMs)), 10)}` +
        `${pad(
          reqs(
            s.map((x) => x.fuseWrite),
            'writes',
            'writeBytes',
          ),
          16,
        )}${pad(
          reqs(
            s.map((x) => x.fuseRead),
            'reads',
            'readBytes',
          ),
          16,
        )}` +
        `${peak(s.map((x) => x.daemonPeakWriteMiB))} / ${peak(s.map((x) => x.daemonPeakReadMiB))}`,
    );
  }
  const mountRuns = samples.filter((x) => x.path === 'rclone');
  const cliRuns = samples.filter((x) => x.path === 'rclone-cli');
  if (mountRuns.length && cliRuns.length) {
    // The mount's write is serial: the file goes through FUSE into the VFS cache, and only after close() does the
    // same upload the CLI does start. What the mount loses to its CLI is the first stage plus any slower upload.
    const ms = (xs: number[]) => Math.round(median(xs));
    console.log(
      `rclone write, median ms: mount ${ms(mountRuns.map((x) => x.onServerMs))} = into its cache ${ms(mountRuns.map((x) => x.writeMs))}` +
        ` + close to on server ${ms(mountRuns.map((x) => x.onServerMs - x.writeMs))}; CLI upload ${ms(cliRuns.map((x) => x.onServerMs))};` +
        ` read: mount ${ms(mountRuns.map((x) => x.readMs))}, CLI ${ms(cliRuns.map((x) => x.readMs))}, minio ${ms(samples.filter((x) => x.path === 'minio').map((x) => x.readMs))}`,
    );
  }
  if (small.length) {
    console.log(`\n${small[0].files} small files (4 KiB), ms`);
    console.log(`${pad('path', 10)}${pad('create', 9)}${pad('list', 9)}${pad('read', 9)}delete`);
    for (const r of small)
      console.log(
        `${pad(r.path as string, 10)}${pad(String(r.createMs), 9)}${pad(String(r.listMs), 9)}${pad(String(r.readMs), 9)}${r.deleteMs}`,
      );
  }
  const out = join(__dirname, '..', '..', 'bench', 'results');
  if (!existsSync(out)) mkdirSync(out, { recursive: true });
  const ratios = Object.fromEntries(
    paths
      .filter((p) => p !== 'minio')
      .map((m) => [
        m,
        {
          write: med[m].write / med.minio.write,
          writeOnServer: med[m].writeOnServer / med.minio.write,
          read: med[m].read / med.minio.read,
        },
      ]),
  );
  const stock = Object.fromEntries(
    MOUNTERS.filter((m) => paths.includes(`${m}-stock`)).map((m) => [m, stockOptions(m)]),
  );
  writeFileSync(
    join(out, 'object.json'),
    JSON.stringify(
      {
        sizeBytes: SIZE,
        reps,
        load: { start: loadAtStart, end: loadavg() },
        stock,
        medians: med,
        ratios,
        samples,
        small,
      },
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
