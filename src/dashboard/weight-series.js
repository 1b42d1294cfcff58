// The weight chart's points: the weight at every check, plus what the checks do not show (a
// rollback drops the weight to 0 and no check follows it; a promotion ends at 100), with a gap
// before each new attempt so a retry is not joined to the attempt before it by a line.

/** History kinds that set the weight by themselves, and to what. */
const WEIGHT_AT = { 'rolling-back': 0, 'rolled-back': 0, promoted: 100, succeeded: 100 };

/**
 * [xs, weights] for uPlot: xs in seconds, ascending; a null weight breaks the line.
 * `checks` and `history` are the API's (`at` ISO times), oldest first.
 */
export function weightSeries(checks, history) {
  const points = [];
  for (const c of checks) points.push({ at: Date.parse(c.at), weight: c.weight, order: 1 });
  for (const h of history) {
    const at = Date.parse(h.at);
    if (h.kind === 'started') {
      // A new attempt starts at 0; the gap just before it ends the previous attempt's line.
      points.push({ at, weight: null, order: 0 });
      points.push({ at, weight: 0, order: 0.5 });
    } else if (h.kind in WEIGHT_AT) {
      points.push({ at, weight: WEIGHT_AT[h.kind], order: 2 });
    }
  }
  points.sort((a, b) => a.at - b.at || a.order - b.order);
  // A gap before anything was drawn breaks nothing.
  while (points.length > 0 && points[0].weight === null) points.shift();
  return [points.map((p) => p.at / 1000), points.map((p) => p.weight)];
}
