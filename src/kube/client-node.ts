// The parts of @kubernetes/client-node that clustershift uses, in one place. Production code
// imports them from here, never from the package (biome.json's noRestrictedImports), so the
// build can replace this module with a bundle of just these parts (build/bundle-client-node.mjs):
// the package's generated code covers every Kubernetes API, and loading all of it took 83 MiB
// of RSS, the bundle 44 (the controller before any workload: 140 to 113 MiB in bench:scale).

export type {
  ApiConstructor,
  ApiType,
  Cluster,
  ConfigurationOptions,
  CoreV1Event,
  HttpLibrary,
  Informer,
  KubernetesObject,
  ObjectCache,
  ObservableMiddleware,
  RequestContext,
  V1ConfigMap,
  V1Deployment,
  V1Lease,
  V1LeaseSpec,
  V1PodDisruptionBudgetList,
  V1ServiceList,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
export {
  ApiException,
  AppsV1Api,
  AutoscalingV2Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  createConfiguration,
  KubeConfig,
  ListWatch,
  makeInformer,
  Observable,
  PatchStrategy,
  PolicyV1Api,
  ResponseContext,
  ServerConfiguration,
  setHeaderMiddleware,
  V1MicroTime,
  VersionApi,
  Watch,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
