/** Rekognition face model versions ("6.0", "7.0"): which one is newer. */

function parts(version: string): number[] {
  return version.split('.').map((part) => Number.parseInt(part, 10) || 0);
}

/** True when `candidate` is a later face model than `baseline`. */
export function isNewerFaceModel(candidate: string, baseline: string): boolean {
  const [a, b] = [parts(candidate), parts(baseline)];
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference > 0;
  }
  return false;
}
