/**
 * A TCP port on 127.0.0.1 that nothing listens on now, for a child process's --http-endpoint: the kernel picks it.
 * A random port in 20000-40000 (which overlaps the ephemeral range the loopbacks' connections use) can be taken,
 * and the plugin exits before serving when its metrics port is.
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
