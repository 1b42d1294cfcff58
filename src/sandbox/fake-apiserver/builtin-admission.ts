// What the real server does to built-in kinds on write, where kubectl apply of a chart sees it:
// a Secret's write-only stringData is folded into data; a new Namespace is Active.

import type { WriteContext } from './object-store.js';
import { isObject } from './types.js';

export function admitBuiltin({ info, object }: WriteContext): void {
  if (info.group !== '') return;
  if (info.resource === 'secrets' && isObject(object.stringData)) {
    const data = isObject(object.data) ? { ...object.data } : {};
    for (const [key, value] of Object.entries(object.stringData)) {
      data[key] = Buffer.from(String(value), 'utf8').toString('base64');
    }
    object.data = data;
    delete object.stringData;
  }
  if (info.resource === 'namespaces' && !isObject(object.status)) object.status = { phase: 'Active' };
}
