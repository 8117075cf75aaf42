/** Polls a condition every 10 ms; rejects after `limitMs` so that no test waits forever. */
export async function until(cond: () => boolean, limitMs = 5000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > limitMs) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}
