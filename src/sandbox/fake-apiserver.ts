// The fake Kubernetes API server's public import path; the parts live in ./fake-apiserver/.

export type { ApiVerb, RequestCount, RequestFilter } from './fake-apiserver/request-log.js';
export type { FakeResource, PrinterColumn } from './fake-apiserver/resources.js';
export { FakeApiServer } from './fake-apiserver/server.js';
export type {
  FakeApiServerOptions,
  FaultKind,
  FaultSpec,
  KubeObject,
  WriteRecord,
} from './fake-apiserver/types.js';
