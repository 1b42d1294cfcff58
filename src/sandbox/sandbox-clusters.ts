// The demo's two clusters: each is a fake Kubernetes API server on loopback, reached through
// the same client as a real cluster (@kubernetes/client-node over HTTP), so the demo exercises
// the real reads, scale-subresource writes, readiness waits and Events.

import { KubeClusterClient } from '../kube/kube-cluster-client.js';
import type { WorkloadRef } from '../rollout/types.js';
import { FakeApiServer } from './fake-apiserver.js';

export interface SandboxWorkload {
  oldReplicas: number;
  newReplicas: number;
  image: string;
}

export interface SandboxClusterNames {
  old: string;
  new: string;
}

export class SandboxClusters {
  private constructor(
    readonly clients: { old: KubeClusterClient; new: KubeClusterClient },
    /** The API servers, e.g. for `kubectl --server <url>` while the demo runs. */
    readonly servers: { old: FakeApiServer; new: FakeApiServer },
    /** Each server's URL. */
    readonly urls: { old: string; new: string },
  ) {}

  static async start(options: {
    names: SandboxClusterNames;
    readyDelayMs: number;
    requestTimeoutMs: number;
  }): Promise<SandboxClusters> {
    const servers = {
      old: new FakeApiServer({ readyDelayMs: options.readyDelayMs }),
      new: new FakeApiServer({ readyDelayMs: options.readyDelayMs }),
    };
    const started: FakeApiServer[] = [];
    try {
      const urls = { old: '', new: '' };
      for (const role of ['old', 'new'] as const) {
        urls[role] = (await servers[role].start()).url;
        started.push(servers[role]);
      }
      const client = (role: 'old' | 'new') =>
        new KubeClusterClient({
          name: options.names[role],
          server: urls[role],
          requestTimeoutMs: options.requestTimeoutMs,
        });
      return new SandboxClusters({ old: client('old'), new: client('new') }, servers, urls);
    } catch (error) {
      await Promise.all(started.map((server) => server.stop()));
      throw error;
    }
  }

  /** Creates the workload's Deployment in both clusters, with the same image in each. */
  async addWorkload(ref: WorkloadRef, spec: SandboxWorkload): Promise<void> {
    this.servers.old.put(deployment(ref, spec.oldReplicas, spec.image));
    this.servers.new.put(deployment(ref, spec.newReplicas, spec.image));
  }

  async stop(): Promise<void> {
    await Promise.all([this.servers.old.stop(), this.servers.new.stop()]);
  }
}

function deployment(ref: WorkloadRef, replicas: number, image: string) {
  const labels = { app: ref.name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: ref.name, namespace: ref.namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}
