// The configuration file as YAML: parsed with its line numbers kept, so every later message can
// name the line of the field it is about; bad YAML is refused without echoing what was pasted.

import { type Alias, isNode, LineCounter, parseDocument, visit } from 'yaml';
import { ConfigError } from '../errors.js';

export interface YamlDocument {
  value: unknown;
  /** `:LINE` of the node at `path` (or of its nearest enclosing node), or '' where none is known. */
  lineOf: (path: string[]) => string;
}

/**
 * Parses YAML (or JSON) text into a plain value, with `lineOf(path)` to point a later message
 * at the line of a field. Bad YAML is a ConfigError naming `source`, the line and the column.
 */
export function parseYamlDocument(text: string, source: string): YamlDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const pos = yamlError.linePos?.[0] ?? lineCounter.linePos(yamlError.pos[0]);
    throw new ConfigError(
      `${source}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${yamlError.message.split('\n')[0]}`,
    );
  }
  // The line of the node at `path`; for a key that is missing, the line of the nearest
  // enclosing node that is there, so every message points somewhere in the file.
  const lineOf = (path: string[]): string => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return `:${lineCounter.linePos(node.range[0]).line}`;
    }
    return '';
  };
  // An alias with no anchor fails only when the document is converted, with a message that
  // echoes the alias (which could be anything pasted there): name the line instead.
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_key, alias) {
      if (!alias.resolve(doc)) {
        unresolved = alias;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  const at = (offset: number | undefined) =>
    offset === undefined ? '' : `:${lineCounter.linePos(offset).line}:${lineCounter.linePos(offset).col}`;
  if (unresolved)
    throw new ConfigError(
      `${source}${at(unresolved.range?.[0])}: not valid YAML: an alias (*) names no anchor (&) defined before it`,
    );
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    // The parser's own limits (e.g. too many aliases: a "billion laughs" file).
    throw new ConfigError(`${source}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  return { value: raw, lineOf };
}
