/**
 * The `coap-psk` command line. Every failure the user can fix is a UserError: one line on
 * stderr, `coap-psk: <message>`, exit status 1, no stack trace. PINs are never flags.
 */
import { Command, CommanderError, Option } from 'commander';
import { UserError } from '../errors.js';
import { settings } from '../config/schema.js';

function program(): Command {
  const cli = new Command('coap-psk')
    .description('CoAP over DTLS 1.2 PSK; device keys derived from serials by a PKCS#11 token')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const serve = cli
    .command('serve')
    .description('serve CoAP over DTLS-PSK; settings from flags > environment > --config file > defaults')
    .option('--config <file>', 'configuration file (JSON or YAML; sections listener, keys, dtls, metrics, log, keylog, routes, identity)')
    .option('--print-config', 'print the effective configuration (secrets masked) and exit')
    .option('--init-dev', 'create the development token first when it is missing (dev start script)');
  // One option per setting of the config schema that has a flag (never the PIN or a key).
  for (const s of settings()) {
    if (s.flag === undefined) continue;
    const env = s.env?.length ? ` (env ${s.env.join(' or ')}; config ${s.path.join('.')})` : ` (config ${s.path.join('.')})`;
    serve.option(s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <${s.kind === 'list' ? 'a,b' : 'value'}>`, `${s.description}${env}`);
  }
  serve.action(async (o: Record<string, string | boolean | undefined>) => {
    // Left dynamic: serve pulls in the whole DTLS stack, which derive and hsm do not need.
    const { runServe } = await import('./serve.js');
    const { config, printConfig, initDev, ...flags } = o;
    await runServe({
      flags,
      configFile: typeof config === 'string' ? config : undefined,
      printConfig: printConfig === true,
      ...(initDev ? { autoInitDev: true } : {}),
    });
  });

  cli
    .command('derive')
    .description('print each serial\'s key (hex) under the newest master key; serials from arguments or stdin')
    .argument('[serial...]', 'serials; none: read stdin, one per line')
    .addOption(new Option('--format <format>', 'output format').choices(['plain', 'csv', 'jsonl']).default('plain'))
    .option('--out <file>', 'write to this file atomically (temp file, then rename)')
    .option('--strict', 'fail on a blank or over-long serial instead of skipping it')
    .action(async (serials: string[], o: { format: string; out?: string; strict?: boolean }) => {
      const { runDerive } = await import('./derive.js');
      await runDerive({ serials, format: o.format, out: o.out, strict: o.strict });
    });

  const hsm = cli.command('hsm').description('manage master keys on the PKCS#11 token (PIN from COAP_PSK_PIN_FILE / COAP_PSK_PIN)');
  hsm
    .command('init-dev')
    .description('create the development SoftHSM token in .dev/ (idempotent)')
    .action(async () => (await import('./hsm.js')).hsmInitDev());
  hsm
    .command('import-key')
    .description('import a 16-byte master key (raw or 32 hex digits) from stdin or --file')
    .requiredOption('--label <label>', 'CKA_LABEL of the new key')
    .option('--file <file>', 'read the key from this file instead of stdin')
    .action(async (o: { label: string; file?: string }) => (await import('./hsm.js')).hsmImportKey(o));
  hsm
    .command('generate-key')
    .description('generate an AES-128 master key inside the token')
    .requiredOption('--label <label>', 'CKA_LABEL of the new key')
    .action(async (o: { label: string }) => (await import('./hsm.js')).hsmGenerateKey(o));
  hsm
    .command('kcv')
    .description('print the key check value (first 3 bytes of AES(key, zero block))')
    .requiredOption('--label <label>', 'CKA_LABEL of the key')
    .action(async (o: { label: string }) => (await import('./hsm.js')).hsmKcv(o));
  hsm
    .command('check')
    .description('show token and key attributes, warn about weak ones, run a self-test derivation')
    .action(async () => {
      await (await import('./hsm.js')).hsmCheck();
    });
  return cli;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv, { from: 'user' });
  } catch (e) {
    process.exitCode = exitCodeFor(e);
  }
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) {
    // Commander already printed its message (or the help / version, which exit 0).
    return e.exitCode;
  }
  if (e instanceof UserError) {
    process.stderr.write(`coap-psk: ${e.message}\n`);
    return 1;
  }
  if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return 0; // `coap-psk derive | head`
  const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
  process.stderr.write(`coap-psk: ${message}\n`);
  if (process.env.COAP_PSK_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  return 1;
}
