/**
 * Polling for conditions that settle asynchronously (RELEASE reaches FUSE
 * after the client has exited). A condition may answer through a promise
 * (a query over the control socket): it is awaited, never taken for met
 * because a promise is truthy.
 */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
