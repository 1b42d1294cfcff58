// Values the chart tests share: what an installer must set, and values the chart must refuse
// (each with the path values.schema.json reports), checked by ajv and by helm itself.

import { checkoutWorkload } from '../fixtures/checkout-route.js';

type Values = Record<string, unknown>;

/** What the README tells an installer to set: the three values without a usable default. */
export const INSTALLER_VALUES: Values = {
  clusters: { new: { kubeconfigSecret: 'clustershift-new-cluster' } },
  api: { auth: { existingSecret: 'clustershift-api-tokens' } },
  config: {
    workloads: [checkoutWorkload()],
  },
};

const firstWorkload = (INSTALLER_VALUES.config as { workloads: Values[] }).workloads[0] as Values;

/** [what, override merged over INSTALLER_VALUES, the path the schema refuses it at ('' for the root)] */
export const BAD_VALUES: ReadonlyArray<[string, Values, string]> = [
  ['replicaCount as a word', { replicaCount: 'two' }, '/replicaCount'],
  ['zero replicas', { replicaCount: 0 }, '/replicaCount'],
  ['an unknown router switch', { rbac: { routers: { linkerd: true } } }, '/rbac/routers'],
  [
    'running as root allowed',
    { podSecurityContext: { runAsNonRoot: false } },
    '/podSecurityContext/runAsNonRoot',
  ],
  ['runAsNonRoot removed', { podSecurityContext: { runAsNonRoot: null } }, '/podSecurityContext'],
  ['root user', { podSecurityContext: { runAsUser: 0 } }, '/podSecurityContext/runAsUser'],
  [
    'privilege escalation',
    { securityContext: { allowPrivilegeEscalation: true } },
    '/securityContext/allowPrivilegeEscalation',
  ],
  ['privileged', { securityContext: { privileged: true } }, '/securityContext/privileged'],
  [
    'capabilities kept',
    { securityContext: { capabilities: { drop: ['NET_RAW'] } } },
    '/securityContext/capabilities/drop',
  ],
  ['a low port', { containerPort: 80 }, '/containerPort'],
  ['the whole limit to the heap', { heapPercentOfMemoryLimit: 100 }, '/heapPercentOfMemoryLimit'],
  ['an unknown top-level key', { replicas: 3 }, ''],
  ['a bad pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
  ['a bad Service type', { service: { type: 'ExternalName' } }, '/service/type'],
  ['a bad scrape interval', { serviceMonitor: { interval: '30 seconds' } }, '/serviceMonitor/interval'],
  [
    'a zero disruption budget',
    { podDisruptionBudget: { maxUnavailable: 0 } },
    '/podDisruptionBudget/maxUnavailable',
  ],
  [
    'no new-cluster kubeconfig',
    { clusters: { new: { kubeconfigSecret: '' } } },
    '/clusters/new/kubeconfigSecret',
  ],
  ['auth on without tokens', { api: { auth: { existingSecret: '' } } }, '/api/auth/existingSecret'],
  ['no workloads', { config: { workloads: [] } }, '/config/workloads'],
  [
    'a kubeconfig path in config (the chart owns it)',
    { config: { clusters: { new: { kubeconfig: '/tmp/kubeconfig' } } } },
    '/config/clusters/new',
  ],
  [
    'the controller namespace in config',
    { config: { controller: { namespace: 'x' } } },
    '/config/controller',
  ],
  [
    'leader election switched in config',
    { config: { controller: { leaderElection: { enabled: false } } } },
    '/config/controller/leaderElection',
  ],
  ['the API port in config', { config: { api: { port: 9090 } } }, '/config/api'],
  [
    'a bad rate-limit window',
    { config: { api: { rateLimit: { window: 'a minute' } } } },
    '/config/api/rateLimit/window',
  ],
  ['the sandbox metrics provider', { config: { metrics: { type: 'sandbox' } } }, '/config/metrics/type'],
  [
    'an unknown router type',
    { config: { workloads: [{ ...firstWorkload, route: { type: 'nginx' } }] } },
    '/config/workloads/0/route/type',
  ],
  [
    'a workload without a route',
    { config: { workloads: [{ namespace: 'shop', name: 'checkout' }] } },
    '/config/workloads/0',
  ],
  ['a typo in config', { config: { workload: [] } }, '/config'],
];
