// CEL source to a syntax tree: the tokens and grammar of the expressions CRD validation rules use.

import { CelUnsupported } from './cel-errors.js';

export type Node =
  | { kind: 'literal'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'select'; operand: Node; field: string }
  | { kind: 'index'; operand: Node; index: Node }
  | { kind: 'call'; target: Node | undefined; name: string; args: Node[] }
  | { kind: 'unary'; op: '!' | '-'; operand: Node }
  | { kind: 'binary'; op: string; left: Node; right: Node }
  | { kind: 'conditional'; test: Node; then: Node; otherwise: Node }
  | { kind: 'list'; items: Node[] }
  | { kind: 'map'; entries: [Node, Node][] };

interface Token {
  type: 'number' | 'string' | 'ident' | 'op' | 'end';
  value: string;
  parsed?: unknown;
}

const OPERATORS = [
  '&&',
  '||',
  '==',
  '!=',
  '<=',
  '>=',
  '<',
  '>',
  '!',
  '+',
  '-',
  '*',
  '/',
  '%',
  '?',
  ':',
  '.',
  ',',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
];

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < source.length) {
    const rest = source.slice(at);
    const space = /^\s+/.exec(rest);
    if (space) {
      at += space[0].length;
      continue;
    }
    const number = /^(\d+\.\d+(e[+-]?\d+)?|\d+[uU]?|0x[0-9a-fA-F]+)/.exec(rest);
    if (number) {
      tokens.push({ type: 'number', value: number[0], parsed: Number(number[0].replace(/[uU]$/, '')) });
      at += number[0].length;
      continue;
    }
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      let value = '';
      let index = 1;
      for (; index < rest.length && rest[index] !== quote; index++) {
        if (rest[index] === '\\') {
          const escaped = rest[++index];
          value += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : (escaped ?? '');
        } else value += rest[index];
      }
      if (index >= rest.length) throw new CelUnsupported(`unterminated string in "${source}"`);
      tokens.push({ type: 'string', value, parsed: value });
      at += index + 1;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (ident) {
      tokens.push({ type: 'ident', value: ident[0] });
      at += ident[0].length;
      continue;
    }
    const op = OPERATORS.find((candidate) => rest.startsWith(candidate));
    if (!op) throw new CelUnsupported(`unexpected "${rest[0]}" in "${source}"`);
    tokens.push({ type: 'op', value: op });
    at += op.length;
  }
  tokens.push({ type: 'end', value: '' });
  return tokens;
}

export class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  parseAll(): Node {
    const node = this.conditional();
    if (this.peek().type !== 'end') throw new CelUnsupported(`unexpected "${this.peek().value}"`);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.at]!;
  }

  private take(): Token {
    return this.tokens[this.at++]!;
  }

  private accept(value: string): boolean {
    const token = this.peek();
    if ((token.type === 'op' || token.type === 'ident') && token.value === value) {
      this.at++;
      return true;
    }
    return false;
  }

  private expect(value: string): void {
    if (!this.accept(value)) throw new CelUnsupported(`expected "${value}", found "${this.peek().value}"`);
  }

  private conditional(): Node {
    const test = this.binary(0);
    if (!this.accept('?')) return test;
    const then = this.conditional();
    this.expect(':');
    return { kind: 'conditional', test, then, otherwise: this.conditional() };
  }

  private static readonly levels = [
    ['||'],
    ['&&'],
    ['==', '!=', '<', '<=', '>', '>=', 'in'],
    ['+', '-'],
    ['*', '/', '%'],
  ];

  private binary(level: number): Node {
    if (level >= Parser.levels.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const token = this.peek();
      if ((token.type !== 'op' && token.type !== 'ident') || !Parser.levels[level]!.includes(token.value))
        return left;
      this.take();
      left = { kind: 'binary', op: token.value, left, right: this.binary(level + 1) };
    }
  }

  private unary(): Node {
    if (this.accept('!')) return { kind: 'unary', op: '!', operand: this.unary() };
    if (this.accept('-')) return { kind: 'unary', op: '-', operand: this.unary() };
    return this.member();
  }

  private args(): Node[] {
    const args: Node[] = [];
    if (this.accept(')')) return args;
    do args.push(this.conditional());
    while (this.accept(','));
    this.expect(')');
    return args;
  }

  private member(): Node {
    let node = this.primary();
    for (;;) {
      if (this.accept('.')) {
        const name = this.take();
        if (name.type !== 'ident') throw new CelUnsupported(`expected a field name after "."`);
        node = this.accept('(')
          ? { kind: 'call', target: node, name: name.value, args: this.args() }
          : { kind: 'select', operand: node, field: name.value };
      } else if (this.accept('[')) {
        const index = this.conditional();
        this.expect(']');
        node = { kind: 'index', operand: node, index };
      } else return node;
    }
  }

  private primary(): Node {
    const token = this.take();
    if (token.type === 'number' || token.type === 'string') return { kind: 'literal', value: token.parsed };
    if (token.type === 'ident') {
      if (token.value === 'true') return { kind: 'literal', value: true };
      if (token.value === 'false') return { kind: 'literal', value: false };
      if (token.value === 'null') return { kind: 'literal', value: null };
      if (this.accept('(')) return { kind: 'call', target: undefined, name: token.value, args: this.args() };
      return { kind: 'ident', name: token.value };
    }
    if (token.value === '(') {
      const inner = this.conditional();
      this.expect(')');
      return inner;
    }
    if (token.value === '[') {
      const items: Node[] = [];
      if (!this.accept(']')) {
        do items.push(this.conditional());
        while (this.accept(','));
        this.expect(']');
      }
      return { kind: 'list', items };
    }
    if (token.value === '{') {
      const entries: [Node, Node][] = [];
      if (!this.accept('}')) {
        do {
          const key = this.conditional();
          this.expect(':');
          entries.push([key, this.conditional()]);
        } while (this.accept(','));
        this.expect('}');
      }
      return { kind: 'map', entries };
    }
    throw new CelUnsupported(`unexpected "${token.value}"`);
  }
}
