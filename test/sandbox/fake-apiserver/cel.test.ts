// The CEL subset the fake API server evaluates for x-kubernetes-validations rules.

import t from 'tap';
import { CelProgram, CelRuntimeError, CelUnsupported } from '../../../src/sandbox/fake-apiserver/cel.js';

const run = (rule: string, self: unknown, oldSelf?: unknown) => new CelProgram(rule).evaluate(self, oldSelf);

/** The class of what `fn` throws, or 'nothing'. */
function thrown(fn: () => unknown): string {
  try {
    fn();
    return 'nothing';
  } catch (error) {
    if (error instanceof CelUnsupported) return 'CelUnsupported';
    if (error instanceof CelRuntimeError) return 'CelRuntimeError';
    return `another error: ${String(error)}`;
  }
}

t.test('the rules the chart CRDs use', async (t) => {
  const rising =
    '!has(self.steps) || (self.steps.isSorted() && self.steps.all(s, self.steps.exists_one(t, t == s)))';
  t.equal(run(rising, {}), true, 'no steps');
  t.equal(run(rising, { steps: [1, 5, 100] }), true);
  t.equal(run(rising, { steps: [5, 1, 100] }), false, 'not sorted');
  t.equal(run(rising, { steps: [5, 5, 100] }), false, 'equal steps do not rise');
  const last = '!has(self.steps) || self.steps[self.steps.size() - 1] == 100';
  t.equal(run(last, { steps: [10, 100] }), true);
  t.equal(run(last, { steps: [10, 50] }), false);
  const route = "self.type != 'istio' || (has(self.virtualService) && has(self.oldDestination))";
  t.equal(run(route, { type: 'haproxy' }), true);
  t.equal(run(route, { type: 'istio', virtualService: 'vs', oldDestination: {} }), true);
  t.equal(run(route, { type: 'istio', virtualService: 'vs' }), false);
  t.equal(run('self.old.name != self.new.name', { old: { name: 'a' }, new: { name: 'b' } }), true);
  t.equal(
    run('has(self.old.kubeconfigSecret) || has(self.new.kubeconfigSecret)', { old: {}, new: {} }),
    false,
  );
});

t.test('operators, precedence, literals and functions', async (t) => {
  t.equal(run('1 + 2 * 3 == 7', null), true);
  t.equal(run('(1 + 2) * 3 == 9', null), true);
  t.equal(run('7 / 2 == 3 && 7 % 2 == 1', null), true, 'integer division truncates');
  t.equal(run('-self < 0', 5), true);
  t.equal(run("(self.x > 2 ? 'big' : 'small') == 'big'", { x: 3 }), true);
  t.equal(run("'b' in self", ['a', 'b']), true);
  t.equal(run("'k' in self", { k: 1 }), true);
  t.equal(run('[1, 2] + [3] == [1, 2, 3]', null), true);
  t.equal(run("{'a': 1}.a == 1", null), true);
  t.equal(run("self.startsWith('ab') && self.endsWith('yz') && self.contains('m')", 'abmyz'), true);
  t.equal(run("self.matches('^[a-z]+$')", 'abc'), true);
  t.equal(run("self.matches('^[a-z]+$')", 'aBc'), false);
  t.equal(run('size(self) == 3 && self.size() == 3', 'abc'), true);
  t.equal(run('self.sum() == 6 && self.min() == 1 && self.max() == 3', [1, 2, 3]), true);
  t.equal(run('self.indexOf(2) == 1 && self.lastIndexOf(9) == -1', [1, 2, 2]), true);
  t.equal(run('self.map(x, x * 2) == [2, 4]', [1, 2]), true);
  t.equal(run('self.filter(x, x > 1) == [2]', [1, 2]), true);
  t.equal(run('self.exists(x, x == 2) && !self.all(x, x == 2)', [1, 2]), true);
  t.equal(run("int('42') == 42 && string(5) == '5'", null), true);
  t.equal(run('self.lowerAscii() == "abc" && self.upperAscii() == "ABC"', 'aBc'), true);
});

t.test('|| and && absorb an error on one side, as CEL does', async (t) => {
  t.equal(run('self.missing == 1 || true', {}), true);
  t.equal(run('true || self.missing == 1', {}), true);
  t.equal(run('self.missing == 1 && false', {}), false);
  t.equal(
    thrown(() => run('self.missing == 1 || false', {})),
    'CelRuntimeError',
  );
  t.equal(
    thrown(() => run('self.items[3] == 1', { items: [1] })),
    'CelRuntimeError',
    'index out of bounds',
  );
  t.equal(
    thrown(() => run('self + 1', 'text')),
    'CelRuntimeError',
  );
});

t.test('transition rules see oldSelf; unsupported CEL is reported, not guessed', async (t) => {
  const program = new CelProgram('self >= oldSelf');
  t.equal(program.usesOldSelf, true);
  t.equal(program.evaluate(5, 3), true);
  t.equal(program.evaluate(2, 3), false);
  t.equal(
    thrown(() => run("self.x.format('%d')", { x: 1 })),
    'CelUnsupported',
  );
  t.equal(
    thrown(() => run('duration(self) > duration("1s")', '2s')),
    'CelUnsupported',
  );
  t.equal(
    thrown(() => new CelProgram('self ===')),
    'CelUnsupported',
  );
  t.equal(
    thrown(() => run('unknownVariable == 1', {})),
    'CelUnsupported',
  );
  t.equal(
    thrown(() => run('self.x', { x: 1 })),
    'CelRuntimeError',
    'a rule must be a bool',
  );
});
