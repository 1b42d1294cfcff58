// Direct tests of the numerical code behind the error-rate test, against reference values:
// published constants, closed forms, and binomial sums computed exactly with BigInt rationals
// (no floating point in the reference), so a wrong digit in a Lanczos coefficient, a continued
// fraction that stops early, or an e-value whose mean under its null exceeds 1 shows here.

import t, { type Test } from 'tap';
import {
  binomialMixtureLogRatio,
  errorRatioEvidenceBelow,
  errorShareAt,
  errorShareEvidence,
  logGamma,
  logRegularizedBeta,
  logUpperRegularizedBeta,
} from '../../src/rollout/sequential-test.js';

// ---- exact reference arithmetic ---------------------------------------------------------------

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/** ln(value) of a positive BigInt, to double precision. */
function logBig(value: bigint): number {
  const shift = Math.max(0, bitLength(value) - 64);
  return Math.log(Number(value >> BigInt(shift))) + shift * Math.LN2;
}

function binomialCoefficient(n: number, k: number): bigint {
  let result = 1n;
  for (let i = 1; i <= k; i++) result = (result * BigInt(n - k + i)) / BigInt(i);
  return result;
}

function factorial(n: number): bigint {
  let result = 1n;
  for (let i = 2; i <= n; i++) result *= BigInt(i);
  return result;
}

/**
 * ln P(from <= Binomial(n, p/q) <= to), summed exactly: each term C(n,j) p^j (q-p)^(n-j) over
 * the common denominator q^n.
 */
function logBinomialRange(n: number, p: number, q: number, from: number, to: number): number {
  let numerator = 0n;
  for (let j = from; j <= to; j++) {
    numerator += binomialCoefficient(n, j) * BigInt(p) ** BigInt(j) * BigInt(q - p) ** BigInt(n - j);
  }
  return logBig(numerator) - n * Math.log(q);
}

/** I_{p/q}(a, b) for whole a, b: P(Binomial(a+b-1, x) >= a). */
function logIncompleteBetaExact(p: number, q: number, a: number, b: number): number {
  const n = a + b - 1;
  return logBinomialRange(n, p, q, a, n);
}

const close = (t: Test, actual: number, expected: number, tolerance: number, message: string) =>
  t.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${message}: ${actual} vs ${expected}`,
  );

// ---- logGamma -----------------------------------------------------------------------------------

t.test('logGamma of whole numbers is ln((n-1)!), exactly computed', async (t) => {
  for (const n of [1, 2, 3, 4, 5, 10, 20, 50, 100, 171, 500]) {
    close(t, logGamma(n), logBig(factorial(n - 1)), 1e-13, `ln Γ(${n})`);
  }
});

t.test('logGamma at half-integers: Γ(n + 1/2) = (2n)! √π / (4^n n!)', async (t) => {
  for (const n of [0, 1, 2, 5, 12, 40]) {
    const expected =
      logBig(factorial(2 * n)) + 0.5 * Math.log(Math.PI) - n * Math.log(4) - logBig(factorial(n));
    close(t, logGamma(n + 0.5), expected, 1e-13, `ln Γ(${n}.5)`);
  }
});

t.test('logGamma below 1/2 (the reflection branch) matches published constants', async (t) => {
  // Γ(1/4) = 3.6256099082219083119... (OEIS A068466); Γ(1/3) = 2.6789385347077476337... (A073005)
  close(t, logGamma(0.25), Math.log(3.625609908221908), 1e-14, 'ln Γ(1/4)');
  close(t, logGamma(1 / 3), Math.log(2.6789385347077475), 1e-14, 'ln Γ(1/3)');
  // Γ(x) Γ(1 - x) = π / sin(πx), and Γ(x + 1) = x Γ(x)
  close(t, logGamma(0.1) + logGamma(0.9), Math.log(Math.PI / Math.sin(Math.PI * 0.1)), 1e-14, 'reflection');
  close(t, logGamma(3.7), Math.log(2.7) + logGamma(2.7), 1e-14, 'recurrence');
});

// ---- the incomplete beta ------------------------------------------------------------------------

t.test('I_x(a, 1) = x^a and I_x(1, b) = 1 - (1-x)^b', async (t) => {
  for (const x of [1e-6, 0.01, 0.3, 0.5, 0.9, 0.999]) {
    for (const k of [0.5, 1, 3, 17.5, 200]) {
      close(t, logRegularizedBeta(x, k, 1), k * Math.log(x), 1e-11, `ln I_${x}(${k}, 1)`);
      const upper = k * Math.log1p(-x); // 1 - I_x(1, k) = (1-x)^k
      close(t, logUpperRegularizedBeta(x, 1, k), upper, 1e-11, `ln (1 - I_${x}(1, ${k}))`);
    }
  }
});

t.test('I_x(a, b) for whole a, b equals the exact binomial tail, far into both tails', async (t) => {
  const cases: Array<[p: number, q: number, a: number, b: number]> = [
    [1, 2, 3, 3],
    [1, 10, 2, 40],
    [1, 100, 5, 300],
    [3, 10, 30, 20],
    [9, 10, 80, 5],
    [1, 1000, 2, 1500],
    [1, 4, 60, 200],
    [1, 20, 40, 400],
  ];
  for (const [p, q, a, b] of cases) {
    const x = p / q;
    const lower = logIncompleteBetaExact(p, q, a, b);
    const n = a + b - 1;
    const upper = logBinomialRange(n, p, q, 0, a - 1);
    close(t, logRegularizedBeta(x, a, b), lower, 1e-9, `ln I_${x}(${a}, ${b})`);
    close(t, logUpperRegularizedBeta(x, a, b), upper, 1e-9, `ln (1 - I_${x}(${a}, ${b}))`);
  }
});

t.test('I_{1/2}(a, a) = 1/2 and the edges of the domain', async (t) => {
  for (const a of [0.5, 1, 7, 250]) close(t, logRegularizedBeta(0.5, a, a), Math.log(0.5), 1e-12, `a = ${a}`);
  t.equal(logUpperRegularizedBeta(0, 2, 3), 0);
  t.equal(logUpperRegularizedBeta(1, 2, 3), Number.NEGATIVE_INFINITY);
});

// ---- the evidence -------------------------------------------------------------------------------

/**
 * The mixture likelihood ratio in closed form for whole counts: with B(x+1, y+1) = x! y! / (x+y+1)!
 * and the incomplete beta as a binomial tail,
 *   above: ∫_b^1 p^x (1-p)^y dp / (1-b) / (b^x (1-b)^y)
 *   below: ∫_0^b p^x (1-p)^y dp / b     / (b^x (1-b)^y)
 */
function exactMixtureLogRatio(
  x: number,
  y: number,
  p: number,
  q: number,
  direction: 'above' | 'below',
): number {
  const n = x + y + 1;
  const logBeta = logBig(factorial(x)) + logBig(factorial(y)) - logBig(factorial(n));
  const b = p / q;
  const logTail =
    direction === 'above'
      ? logBinomialRange(n, p, q, 0, x) - Math.log1p(-b) // 1 - I_b(x+1, y+1) = P(Bin(n, b) <= x)
      : logBinomialRange(n, p, q, x + 1, n) - Math.log(b);
  return logBeta + logTail - (x * Math.log(b) + y * Math.log1p(-b));
}

t.test('the mixture likelihood ratio matches its closed form', async (t) => {
  const cases: Array<[x: number, y: number, p: number, q: number]> = [
    [0, 10, 1, 10],
    [3, 0, 1, 7],
    [5, 40, 1, 10],
    [25, 75, 1, 4],
    [2, 300, 1, 100],
    [60, 40, 1, 2],
    [0, 2000, 1, 1000],
  ];
  for (const [x, y, p, q] of cases) {
    for (const direction of ['above', 'below'] as const) {
      close(
        t,
        binomialMixtureLogRatio({ successes: x, failures: y, boundary: p / q, direction }),
        exactMixtureLogRatio(x, y, p, q, direction),
        1e-9,
        `${direction}: ${x} of ${x + y} at ${p}/${q}`,
      );
    }
  }
});

t.test(
  'an e-value: its mean under the null boundary is exactly 1, and at most 1 inside the null',
  async (t) => {
    for (const n of [1, 5, 20, 60]) {
      for (const boundary of [0.05, 0.3, 0.7]) {
        for (const direction of ['above', 'below'] as const) {
          // Inside the null: a probability on the other side of the boundary from the alternatives.
          for (const truth of [boundary, direction === 'above' ? boundary / 2 : (1 + boundary) / 2]) {
            let mean = 0;
            for (let x = 0; x <= n; x++) {
              const logP =
                logBig(binomialCoefficient(n, x)) + x * Math.log(truth) + (n - x) * Math.log1p(-truth);
              const logE = binomialMixtureLogRatio({ successes: x, failures: n - x, boundary, direction });
              mean += Math.exp(logP + logE);
            }
            if (truth === boundary)
              close(t, mean, 1, 1e-9, `${direction} n=${n} b=${boundary}: mean at the boundary`);
            else
              t.ok(mean <= 1 + 1e-12, `${direction} n=${n} b=${boundary}: mean ${mean} <= 1 at p=${truth}`);
          }
        }
      }
    }
  },
);

t.test('errorShareEvidence: the conditional binomial of errors between the clusters', async (t) => {
  // 10% of the traffic to new, allowed ratio 1.5: p0 = 1.5*100 / (1.5*100 + 900) = 1/7.
  const evidence = errorShareEvidence({
    newRequests: 100,
    newErrors: 5,
    oldRequests: 900,
    oldErrors: 9,
    allowedRatio: 1.5,
  });
  close(t, evidence.nullShare, 1 / 7, 1e-15, 'the null share');
  close(t, evidence.observedShare, 5 / 14, 1e-15, 'the observed share');
  close(t, evidence.logLikelihoodRatio, exactMixtureLogRatio(5, 9, 1, 7, 'above'), 1e-9, 'the evidence');
  t.equal(errorShareAt(1.5, 100, 900), 1 / 7);
  t.same(
    errorShareEvidence({ newRequests: 100, newErrors: 0, oldRequests: 900, oldErrors: 0, allowedRatio: 1.5 }),
    { logLikelihoodRatio: 0, nullShare: 0, observedShare: 0 },
    'no errors: no evidence',
  );
  t.equal(
    errorShareEvidence({ newRequests: 100, newErrors: 3, oldRequests: 0, oldErrors: 0, allowedRatio: 1.5 })
      .logLikelihoodRatio,
    0,
    'no baseline traffic: the comparison cannot speak',
  );
});

t.test(
  'errorRatioEvidenceBelow is an e-value under "ratio times worse" and grows on a healthy cluster',
  async (t) => {
    // One step with 40 errors in all: under the null the new cluster's count is Binomial(40, p_D).
    const step = { newRequests: 1000, oldRequests: 3000 };
    const pD = errorShareAt(2, step.newRequests, step.oldRequests);
    let mean = 0;
    for (let x = 0; x <= 40; x++) {
      const logP = logBig(binomialCoefficient(40, x)) + x * Math.log(pD) + (40 - x) * Math.log1p(-pD);
      mean += Math.exp(logP + errorRatioEvidenceBelow([{ ...step, newErrors: x, oldErrors: 40 - x }], 2));
    }
    close(t, mean, 1, 1e-9, 'mean exactly 1 at the boundary');
    // Equal rates (10 of 40 errors from a quarter of the traffic), over three such steps: strong evidence.
    const healthy = { ...step, newErrors: 10, oldErrors: 30 };
    const one = errorRatioEvidenceBelow([healthy], 2);
    const three = errorRatioEvidenceBelow([healthy, healthy, healthy], 2);
    t.ok(three > one && three > Math.log(20), `evidence grows with the steps: ${one} then ${three}`);
    t.equal(
      errorRatioEvidenceBelow([{ ...step, newErrors: 0, oldErrors: 0 }], 2),
      0,
      'no errors: no evidence',
    );
  },
);
