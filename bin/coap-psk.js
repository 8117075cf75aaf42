#!/usr/bin/env node
// Entry point for `npx coap-psk`: the project ships TypeScript and runs it through tsx,
// so that `npm ci` is the only step between a clone and a working command.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
