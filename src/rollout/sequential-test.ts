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
  const p0 = (allowedRatio * newRequests) / (allowedRatio * newRequests + oldRequests);
  const x = newErrors;
  const rest = totalErrors - newErrors;
  // ∫_{p0}^{1} p^x (1-p)^rest dp / (1 - p0)  divided by  p0^x (1-p0)^rest
  const logBeta = logGamma(x + 1) + logGamma(rest + 1) - logGamma(x + rest + 2);
  const logMixture = logBeta + logUpperRegularizedBeta(p0, x + 1, rest + 1) - Math.log1p(-p0);
  const logNull = x * Math.log(p0) + rest * Math.log1p(-p0);
  return { logLikelihoodRatio: logMixture - logNull, nullShare: p0, observedShare };
}
