// Durations as the configuration writes them (500ms, 30s, 5m, 1h) and as messages show them.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(text);
  if (!match)
    throw new Error(`found ${JSON.stringify(text)}, expected a duration such as 500ms, 30s, 5m or 1h`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1));
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
