// An anytime-valid test that the new cluster's error rate is worse than the old one's.
//
// Conditioned on the total number of errors E seen in both clusters, the number of errors
// in the new cluster is Binomial(E, p) with p = r·n_new / (r·n_new + n_old), where r is the
// ratio of the two error rates. "No worse than the allowed ratio ρ" means p <= p0 with
// p0 = ρ·n_new / (ρ·n_new + n_old). The evidence against it is a mixture likelihood ratio
// (a uniform prior on p over (p0, 1)), in the spirit of Lindon & Malek 2020: under the null
// it is a nonnegative supermartingale, so by Ville's inequality the chance it EVER reaches
// 1/α is at most α, however often the controller looks. That is what makes checking every
// few seconds safe.

/** log Γ(x) for x > 0 (Lanczos, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.9999999999998099, 676.5203681218851, -1259.1392167224028, 771.3234287776531, -176.6150291621406,
    12.507343278686905, -0.13857109526572012, 9.984369578019572e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let sum = c[0] as number;
  for (let i = 1; i < 9; i++) sum += (c[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** ln of the regularised incomplete beta function's complement pieces, via a continued fraction. */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const maxIterations = 300;
  const epsilon = 1e-14;
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= maxIterations; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < epsilon) break;
  }
  return h;
}

/** ln of the upper regularised incomplete beta 1 - I_x(a, b). */
export function logUpperRegularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return Number.NEGATIVE_INFINITY;
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b));
  if (x < (a + 1) / (a + b + 2)) {
    // I_x is the small side: 1 - I_x computed as log1p(-I_x).
    const lower = Math.exp(logFront) * (betaContinuedFraction(a, b, x) / a);
    return Math.log1p(-Math.min(lower, 1));
  }
  // 1 - I_x(a, b) = I_{1-x}(b, a), computed directly for accuracy in the tail.
  return logFront + Math.log(betaContinuedFraction(b, a, 1 - x) / b);
}

/** ln of the regularised incomplete beta I_x(a, b): the mirror image of the upper one. */
export function logRegularizedBeta(x: number, a: number, b: number): number {
  return logUpperRegularizedBeta(1 - x, b, a);
}

/**
 * ln of a mixture likelihood ratio for `successes` out of `successes + failures` Bernoulli
 * trials with a common probability p. `above`: against H0 p <= boundary, mixing over a uniform
 * prior on (boundary, 1). `below`: against H0 p >= boundary, uniform prior on (0, boundary).
 * Under its null each is a nonnegative supermartingale in the number of trials with mean at most
 * 1 (an e-value at every count, however the counts were looked at), which is what Ville's
 * inequality needs. Counts need not be whole (Prometheus extrapolates).
 */
export function binomialMixtureLogRatio(input: {
  successes: number;
  failures: number;
  boundary: number;
  direction: 'above' | 'below';
}): number {
  const { successes: x, failures: y, boundary, direction } = input;
  if (!(x >= 0 && y >= 0) || x + y <= 0 || !(boundary > 0 && boundary < 1)) return 0;
  const logBeta = logGamma(x + 1) + logGamma(y + 1) - logGamma(x + y + 2);
  const logNull = x * Math.log(boundary) + y * Math.log1p(-boundary);
  const logMixture =
    direction === 'above'
      ? logBeta + logUpperRegularizedBeta(boundary, x + 1, y + 1) - Math.log1p(-boundary)
      : logBeta + logRegularizedBeta(boundary, x + 1, y + 1) - Math.log(boundary);
  const value = logMixture - logNull;
  // A tail that underflows means "no evidence at all" on that side, never NaN.
  return Number.isFinite(value) ? value : value > 0 ? Number.MAX_VALUE : -1e6;
}

export interface ErrorShareEvidence {
  /** ln of the mixture likelihood ratio against "new is at most ρ times worse". */
  logLikelihoodRatio: number;
  /** The null boundary p0: the new cluster's share of errors if its rate were exactly ρ·old. */
  nullShare: number;
  /** The observed share of all errors that came from the new cluster. */
  observedShare: number;
}

/**
 * Evidence that the new cluster's error rate exceeds `allowedRatio` times the old one's,
 * from cumulative counts. Zero errors, or no traffic on one side, gives no evidence.
 */
export function errorShareEvidence(input: {
  newRequests: number;
  newErrors: number;
  oldRequests: number;
  oldErrors: number;
  allowedRatio: number;
}): ErrorShareEvidence {
  const { newRequests, newErrors, oldRequests, oldErrors, allowedRatio } = input;
  const totalErrors = newErrors + oldErrors;
  if (totalErrors === 0 || newRequests <= 0) {
    return { logLikelihoodRatio: 0, nullShare: 0, observedShare: 0 };
  }
  const observedShare = newErrors / totalErrors;
  if (oldRequests <= 0) {
    // No baseline traffic: the comparison cannot speak; absolute bounds still apply elsewhere.
    return { logLikelihoodRatio: 0, nullShare: 1, observedShare };
  }
  const p0 = errorShareAt(allowedRatio, newRequests, oldRequests);
  // ∫_{p0}^{1} p^x (1-p)^rest dp / (1 - p0)  divided by  p0^x (1-p0)^rest
  const logLikelihoodRatio = binomialMixtureLogRatio({
    successes: newErrors,
    failures: totalErrors - newErrors,
    boundary: p0,
    direction: 'above',
  });
  return { logLikelihoodRatio, nullShare: p0, observedShare };
}

/** The new cluster's expected share of all errors if its error rate were `ratio` times the old one's. */
export function errorShareAt(ratio: number, newRequests: number, oldRequests: number): number {
  return (ratio * newRequests) / (ratio * newRequests + oldRequests);
}

/** The ratios a below-ratio test mixes over: `ratio` x 0.7^k for k = 1..8 (down to about 6%). */
const BELOW_RATIO_GRID = Array.from({ length: 8 }, (_, k) => 0.7 ** (k + 1));

/**
 * Evidence, over several steps' counts at once, that the new cluster's error rate is below
 * `ratio` times the old one's (against H0 "at least `ratio` times worse at every step"). Each
 * step conditions on its own errors (the share that came from the new cluster depends on the
 * step's weight); the alternatives are one ratio common to all steps, mixed over a fixed grid
 * below `ratio` with equal weights. For each ratio of the grid the product over steps and errors
 * is a supermartingale under H0, so the mixture is an e-value however the steps were looked at,
 * and it pays the price of mixing (ln 8) once for the rollout instead of once per step.
 */
export function errorRatioEvidenceBelow(
  steps: ReadonlyArray<{ newRequests: number; newErrors: number; oldRequests: number; oldErrors: number }>,
  ratio: number,
): number {
  const usable = steps.filter((s) => s.newRequests > 0 && s.oldRequests > 0 && s.newErrors + s.oldErrors > 0);
  if (usable.length === 0) return 0;
  const logs = BELOW_RATIO_GRID.map((fraction) => {
    let sum = 0;
    for (const step of usable) {
      const atBoundary = errorShareAt(ratio, step.newRequests, step.oldRequests);
      const alternative = errorShareAt(ratio * fraction, step.newRequests, step.oldRequests);
      sum +=
        step.newErrors * Math.log(alternative / atBoundary) +
        step.oldErrors * Math.log((1 - alternative) / (1 - atBoundary));
    }
    return sum;
  });
  const top = Math.max(...logs);
  const mixture = top + Math.log(logs.reduce((acc, value) => acc + Math.exp(value - top), 0) / logs.length);
  return Number.isFinite(mixture) ? mixture : 0;
}
