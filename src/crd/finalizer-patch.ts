// A JSON patch setting metadata.finalizers only if the object is still the one read.

/** `test` fails the patch when resourceVersion moved on; the caller reads again and retries. */
export function finalizerPatch(resourceVersion: string | undefined, finalizers: string[]): object[] {
  return [
    ...(resourceVersion ? [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }] : []),
    { op: 'add', path: '/metadata/finalizers', value: finalizers },
  ];
}
