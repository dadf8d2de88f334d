/**
 * Child process of the restart-survival test: a node plugin (CSI Node service on a unix socket) that talks
 * to a FUSE supervisor running elsewhere. Run inside `unshare --pid --fork` so SIGKILLing the namespace's
 * init takes the whole plugin down. Argument: JSON { csiSocket, supervisorSocket, kubeletDir }.
 */
import { CsiServer } from '../../src/csi/server';
import { loadCsiProto, stripSecrets } from '../../src/csi/proto';
import { nodeHandlers } from '../../src/csi/node';
import { SupervisorClient } from '../../src/fuse/supervisor-client';
import { createLogger } from '../../src/log';
import { KernelNodeMounter } from '../../src/mount/node-mounter';

const args = JSON.parse(process.argv[process.argv.length - 1]) as {
  csiSocket: string;
  supervisorSocket: string;
  kubeletDir: string;
};

async function main(): Promise<void> {
  const log = createLogger({ level: 'info' });
  const handlers = nodeHandlers({
    mounter: new KernelNodeMounter({ log, rescanner: { rescan: async () => undefined } }),
    metadata: { get: async () => ({ uuid: 'node-child' }) },
    nodeId: 'node-child',
    blockStorage: { rescanOnResize: false, ignoreVolumeAz: false, ignoreVolumeMicroversion: false },
    withTopology: false,
    additionalTopology: {},
    kubeletDir: args.kubeletDir,
    byIdDir: '/dev/disk/by-id',
    log,
    fuse: new SupervisorClient(args.supervisorSocket),
  });
  const server = new CsiServer({
    endpoint: `unix://${args.csiSocket}`,
    log,
    stripSecrets,
    services: [{ definition: loadCsiProto().NodeService, handlers }],
  });
  await server.start();
  process.stdout.write(`ready:${process.pid}\n`);
  await new Promise(() => setInterval(() => undefined, 60_000));
}

main().catch((e: unknown) => {
  process.stdout.write(`error:${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
