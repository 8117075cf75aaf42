/** For tests that need dgram reusePort: whether to skip, and the reason shown in the title. */
import { reusePortSupported } from '../../src/cluster/support.js';

export const NO_REUSE_PORT = !reusePortSupported();
export const SKIP_REASON = NO_REUSE_PORT ? ` (skipped: needs Node.js 22.12+ for dgram reusePort, this is ${process.version}; CI runs it on Node 24)` : '';
