/**
 * Entry point of the local S3 server's own process (started by startS3ServerProcess). It answers its endpoint
 * over IPC and stops when told to or when its parent goes. Ctrl-C reaches the whole foreground process group;
 * the server ignores it so the demo can still delete its buckets while it tears down.
 */
import { startS3Server } from './local-s3';

async function main(): Promise<void> {
  process.on('SIGINT', () => undefined);
  const s3 = await startS3Server();
  const stop = async () => {
    await s3.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (m) => m === 'stop' && void stop());
  process.on('disconnect', () => void stop());
  process.send?.({ endpoint: s3.endpoint, directory: s3.directory });
}

main().catch((e: unknown) => {
  process.stderr.write(`local S3 server: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
});
