/** What the CSI server reports to metrics about each call. Defined here so src/metrics needs nothing from src/csi. */
export interface CallObserver {
  callStarted(rpc: string): void;
  callFinished(rpc: string, code: string, durationMs: number): void;
}
