// A migration's progress bar as segments: one per wave (sized by its workloads, filled by those
// that Succeeded), or one for the whole migration when it has no waves. Pure, so a test can
// import it outside a browser.

export function waveSegments(migration) {
  const waves =
    migration.waves.length > 0
      ? migration.waves
      : [
          {
            name: 'all',
            phase:
              migration.counts.total > 0 && migration.counts.succeeded === migration.counts.total
                ? 'Succeeded'
                : 'Progressing',
            counts: migration.counts,
          },
        ];
  const parts = waves.map((wave) => {
    const total = wave.counts.total;
    const done = wave.counts.succeeded ?? 0;
    return {
      name: wave.name,
      phase: wave.phase,
      total,
      done,
      size: Math.max(1, total),
      filled: total > 0 ? Math.round((done / total) * 100) : 0,
      title: `${wave.name}: ${done} of ${total} succeeded (${wave.phase})`,
    };
  });
  const done = parts.reduce((sum, p) => sum + p.done, 0);
  const total = parts.reduce((sum, p) => sum + p.total, 0);
  return { parts, label: `${done} of ${total} workloads succeeded` };
}
