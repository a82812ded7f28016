/** Races `p` against a timer that is always cleared, so no timer outlives the step. */
export async function within<T>(p: Promise<T>, ms: number, onTimeout: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((resolve, reject) => (timer = setTimeout(() => Promise.resolve().then(onTimeout).then(resolve, reject), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
