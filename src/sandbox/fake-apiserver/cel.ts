// The part of CEL that CRD x-kubernetes-validations rules use, evaluated the way the API server
// does: literals, `self` / `oldSelf`, field selection and indexing, `has()`, the operators
// (`! - * / % + < <= > >= == != in && || ?:`), the macros `all`, `exists`, `exists_one`, `map`,
// `filter`, and the functions `size`, `int`, `double`, `string`, `startsWith`, `endsWith`,
// `contains`, `matches`, `lowerAscii`, `upperAscii`, `trim`, `isSorted`, `sum`, `min`, `max`,
// `indexOf`, `lastIndexOf`. Anything else throws CelUnsupported: the fake then accepts the
// object unchecked by that rule (what a real server would evaluate, this one cannot).

import { CelRuntimeError, CelUnsupported } from './cel-errors.js';
import { type Node, Parser, tokenize } from './cel-parser.js';

export { CelRuntimeError, CelUnsupported };

type Scope = Map<string, unknown>;

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && equal(a[key], b[key]));
  }
  return false;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  throw new CelRuntimeError(`no such overload for ordering ${typeof a} and ${typeof b}`);
}

function sizeOf(value: unknown): number {
  if (typeof value === 'string') return [...value].length;
  if (Array.isArray(value)) return value.length;
  if (isMap(value)) return Object.keys(value).length;
  throw new CelRuntimeError(`no such overload: size(${typeof value})`);
}

function asList(value: unknown, what: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (isMap(value)) return Object.keys(value);
  throw new CelRuntimeError(`${what} needs a list or a map`);
}

const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

function evaluate(node: Node, scope: Scope): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'ident':
      if (!scope.has(node.name)) throw new CelUnsupported(`undeclared reference to "${node.name}"`);
      return scope.get(node.name);
    case 'select': {
      const operand = evaluate(node.operand, scope);
      if (!isMap(operand) || !(node.field in operand))
        throw new CelRuntimeError(`no such key: ${node.field}`);
      return operand[node.field];
    }
    case 'index': {
      const operand = evaluate(node.operand, scope);
      const index = evaluate(node.index, scope);
      if (Array.isArray(operand) && typeof index === 'number') {
        if (index < 0 || index >= operand.length) throw new CelRuntimeError(`index out of bounds: ${index}`);
        return operand[index];
      }
      if (isMap(operand) && typeof index === 'string') {
        if (!(index in operand)) throw new CelRuntimeError(`no such key: ${index}`);
        return operand[index];
      }
      throw new CelRuntimeError('no such overload for indexing');
    }
    case 'unary': {
      const operand = evaluate(node.operand, scope);
      if (node.op === '!') {
        if (typeof operand !== 'boolean') throw new CelRuntimeError('no such overload: !');
        return !operand;
      }
      if (typeof operand !== 'number') throw new CelRuntimeError('no such overload: -');
      return -operand;
    }
    case 'conditional': {
      const test = evaluate(node.test, scope);
      if (typeof test !== 'boolean') throw new CelRuntimeError('a condition must be a bool');
      return evaluate(test ? node.then : node.otherwise, scope);
    }
    case 'list':
      return node.items.map((item) => evaluate(item, scope));
    case 'map':
      return Object.fromEntries(
        node.entries.map(([key, value]) => [evaluate(key, scope), evaluate(value, scope)]),
      );
    case 'binary':
      return binary(node, scope);
    case 'call':
      return call(node, scope);
  }
}

function logical(node: { op: string; left: Node; right: Node }, scope: Scope): boolean {
  // CEL's && and || are commutative over errors: `error || true` is true.
  const shortCircuit = node.op === '||';
  let leftError: unknown;
  try {
    const left = evaluate(node.left, scope);
    if (typeof left !== 'boolean') throw new CelRuntimeError(`no such overload: ${node.op}`);
    if (left === shortCircuit) return left;
  } catch (error) {
    if (error instanceof CelUnsupported) throw error;
    leftError = error;
  }
  const right = evaluate(node.right, scope);
  if (typeof right !== 'boolean') throw new CelRuntimeError(`no such overload: ${node.op}`);
  if (right === shortCircuit) return right;
  if (leftError !== undefined) throw leftError;
  return right;
}

function binary(node: { op: string; left: Node; right: Node }, scope: Scope): unknown {
  if (node.op === '&&' || node.op === '||') return logical(node, scope);
  const left = evaluate(node.left, scope);
  const right = evaluate(node.right, scope);
  switch (node.op) {
    case '==':
      return equal(left, right);
    case '!=':
      return !equal(left, right);
    case '<':
      return compare(left, right) < 0;
    case '<=':
      return compare(left, right) <= 0;
    case '>':
      return compare(left, right) > 0;
    case '>=':
      return compare(left, right) >= 0;
    case 'in':
      if (Array.isArray(right)) return right.some((item) => equal(item, left));
      if (isMap(right) && typeof left === 'string') return left in right;
      throw new CelRuntimeError('no such overload: in');
    case '+':
      if (typeof left === 'number' && typeof right === 'number') return left + right;
      if (typeof left === 'string' && typeof right === 'string') return left + right;
      if (Array.isArray(left) && Array.isArray(right)) return [...left, ...right];
      throw new CelRuntimeError('no such overload: +');
  }
  if (typeof left !== 'number' || typeof right !== 'number') {
    throw new CelRuntimeError(`no such overload: ${node.op}`);
  }
  const integers = Number.isInteger(left) && Number.isInteger(right);
  switch (node.op) {
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '/':
      if (integers && right === 0) throw new CelRuntimeError('division by zero');
      return integers ? Math.trunc(left / right) : left / right;
    case '%':
      if (right === 0) throw new CelRuntimeError('modulus by zero');
      return left % right;
  }
  throw new CelUnsupported(`operator ${node.op}`);
}

function macro(node: { target: Node; name: string; args: Node[] }, scope: Scope): unknown {
  const items = asList(evaluate(node.target, scope), node.name);
  const variable = node.args[0];
  if (variable?.kind !== 'ident') throw new CelUnsupported(`${node.name} needs a variable name`);
  const withItem = (item: unknown) => new Map(scope).set(variable.name, item);
  const test = (item: unknown, body: Node) => {
    const result = evaluate(body, withItem(item));
    if (typeof result !== 'boolean') throw new CelRuntimeError(`${node.name} needs a bool predicate`);
    return result;
  };
  const body = node.args[node.args.length - 1]!;
  switch (node.name) {
    case 'all':
      return items.every((item) => test(item, body));
    case 'exists':
      return items.some((item) => test(item, body));
    case 'exists_one':
      return items.filter((item) => test(item, body)).length === 1;
    case 'filter':
      return items.filter((item) => test(item, body));
    default: {
      const filter = node.args.length === 3 ? node.args[1]! : undefined;
      return items
        .filter((item) => filter === undefined || test(item, filter))
        .map((item) => evaluate(body, withItem(item)));
    }
  }
}

function call(node: { target: Node | undefined; name: string; args: Node[] }, scope: Scope): unknown {
  if (node.target === undefined && node.name === 'has') {
    const field = node.args[0];
    if (node.args.length !== 1 || field?.kind !== 'select')
      throw new CelUnsupported('has() needs a field selection');
    const operand = evaluate(field.operand, scope);
    return isMap(operand) && field.field in operand && operand[field.field] !== null;
  }
  if (node.target !== undefined && MACROS.has(node.name)) {
    return macro({ target: node.target, name: node.name, args: node.args }, scope);
  }
  const receiverAndArgs =
    node.target === undefined
      ? node.args.map((arg) => evaluate(arg, scope))
      : [evaluate(node.target, scope), ...node.args.map((arg) => evaluate(arg, scope))];
  const [receiver, argument] = receiverAndArgs;
  const text = (value: unknown) => {
    if (typeof value !== 'string') throw new CelRuntimeError(`${node.name} needs a string`);
    return value;
  };
  const numbers = (value: unknown) => {
    const list = asList(value, node.name);
    if (!list.every((item) => typeof item === 'number'))
      throw new CelRuntimeError(`${node.name} needs numbers`);
    return list as number[];
  };
  switch (node.name) {
    case 'size':
      return sizeOf(receiver);
    case 'int':
      if (typeof receiver === 'string' && /^-?\d+$/.test(receiver)) return Number(receiver);
      if (typeof receiver === 'number') return Math.trunc(receiver);
      throw new CelRuntimeError('int() needs a number or an integer string');
    case 'double':
      return Number(receiver);
    case 'string':
      return typeof receiver === 'string' ? receiver : JSON.stringify(receiver);
    case 'startsWith':
      return text(receiver).startsWith(text(argument));
    case 'endsWith':
      return text(receiver).endsWith(text(argument));
    case 'contains':
      return text(receiver).includes(text(argument));
    case 'matches':
      return new RegExp(text(argument), 'u').test(text(receiver));
    case 'lowerAscii':
      return text(receiver).toLowerCase();
    case 'upperAscii':
      return text(receiver).toUpperCase();
    case 'trim':
      return text(receiver).trim();
    case 'isSorted': {
      const list = asList(receiver, 'isSorted');
      return list.every((item, index) => index === 0 || compare(list[index - 1], item) <= 0);
    }
    case 'sum':
      return numbers(receiver).reduce((total, item) => total + item, 0);
    case 'min':
    case 'max': {
      const list = numbers(receiver);
      if (list.length === 0) throw new CelRuntimeError(`${node.name} of an empty list`);
      return node.name === 'min' ? Math.min(...list) : Math.max(...list);
    }
    case 'indexOf':
    case 'lastIndexOf': {
      if (typeof receiver === 'string') {
        return node.name === 'indexOf'
          ? receiver.indexOf(text(argument))
          : receiver.lastIndexOf(text(argument));
      }
      const list = asList(receiver, node.name);
      const indexes = list
        .map((item, index) => (equal(item, argument) ? index : -1))
        .filter((index) => index >= 0);
      if (indexes.length === 0) return -1;
      return node.name === 'indexOf' ? indexes[0] : indexes[indexes.length - 1];
    }
  }
  throw new CelUnsupported(`function ${node.name}`);
}

/** A parsed rule; parse once per CRD, evaluate per object. */
export class CelProgram {
  private readonly root: Node;
  /** Transition rules (naming oldSelf) only run on updates that have an old value. */
  readonly usesOldSelf: boolean;

  constructor(readonly source: string) {
    this.root = new Parser(tokenize(source)).parseAll();
    this.usesOldSelf = /\boldSelf\b/.test(source);
  }

  /** The rule's boolean result; throws CelRuntimeError or CelUnsupported. */
  evaluate(self: unknown, oldSelf?: unknown): boolean {
    const scope: Scope = new Map([['self', self]]);
    if (oldSelf !== undefined) scope.set('oldSelf', oldSelf);
    const result = evaluate(this.root, scope);
    if (typeof result !== 'boolean') throw new CelRuntimeError('the rule must evaluate to a bool');
    return result;
  }
}
