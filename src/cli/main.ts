/**
 * The `coap-psk` command line. Every failure the user can fix is a UserError: one line on
 * stderr, `coap-psk: <message>`, exit status 1, no stack trace. PINs are never flags.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { UserError } from '../errors.js';
import { configSchema, settings, type SectionName, type SettingInfo } from '../config/schema.js';
import type { KeyConfig } from '../config/keys.js';

type Flags = Record<string, string | boolean | undefined>;

/** src/cli/main.ts and dist/cli/main.js are both two levels below package.json. */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** One option per setting of the config schema that has a flag (never the PIN or a key). */
function addSettingOptions(cmd: Command, only?: SectionName): Command {
  for (const s of settings()) {
    if (s.flag === undefined || (only !== undefined && s.path[0] !== only)) continue;
    cmd.option(optionSpec(s), `${s.description}${origins(s)}`);
  }
  return cmd;
}

function optionSpec(s: SettingInfo): string {
  return s.kind === 'bool' ? `--${s.flag}` : `--${s.flag} <${s.kind === 'list' ? 'a,b' : 'value'}>`;
}

function origins(s: SettingInfo): string {
  return s.env?.length ? ` (env ${s.env.join(' or ')}; config ${s.path.join('.')})` : ` (config ${s.path.join('.')})`;
}

const CONFIG_HELP = `configuration file (JSON or YAML; sections ${Object.keys(configSchema.shape).join(', ')})`;

/** derive and hsm: the keys section of the same configuration as serve (flags > environment > --config file). */
async function keyConfig(o: Flags): Promise<KeyConfig> {
  const { resolveConfig } = await import('../config/index.js');
  const { config, ...flags } = o;
  return resolveConfig({ flags, file: typeof config === 'string' ? config : undefined, only: 'keys' }).keys;
}

/** A subcommand that reads the key configuration: --config and the keys section's flags. */
function withKeyOptions(cmd: Command): Command {
  cmd.option('--config <file>', `${CONFIG_HELP}; only the keys section is used`);
  return addSettingOptions(cmd, 'keys');
}

function program(): Command {
  const cli = new Command('coap-psk')
    .description('CoAP over DTLS 1.2 PSK; device keys derived from serials by a PKCS#11 token')
    .version(version(), '-V, --version', 'print the version and exit')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const serve = cli
    .command('serve')
    .description('serve CoAP over DTLS-PSK; settings from flags > environment > --config file > defaults')
    .option('--config <file>', CONFIG_HELP)
    .option('--print-config', 'print the effective configuration (secrets masked) and exit')
    .option('--init-dev', 'create the development token first when it is missing (dev start script)')
    .option('--takeover', 'graceful restart: take the sessions and the port over from the server running with this listener (it then exits)');
  addSettingOptions(serve);
  serve.action(async (o: Flags) => {
    // Left dynamic: serve pulls in the whole DTLS stack, which derive and hsm do not need.
    const { runServe } = await import('./serve.js');
    const { config, printConfig, initDev, takeover, ...flags } = o;
    await runServe({
      flags,
      configFile: typeof config === 'string' ? config : undefined,
      printConfig: printConfig === true,
      ...(initDev ? { autoInitDev: true } : {}),
      ...(takeover ? { takeover: true } : {}),
    });
  });

  const derive = cli
    .command('derive')
    .description('print each serial\'s key (hex) under the newest master key; serials from arguments or stdin')
    .argument('[serial...]', 'serials; none: read stdin, one per line')
    .addOption(new Option('--format <format>', 'plain: SERIAL<space>hex (the Go program\'s lines); csv and jsonl quote the serial').choices(['plain', 'csv', 'jsonl']).default('plain'))
    .option('--key-only', 'print the key alone, for one serial argument: KEY=$(coap-psk derive --key-only SN1)')
    .option('--out <file>', 'write to this file atomically (temp file, then rename)')
    .option('--strict', 'stop at the first refused serial (blank, over 128 bytes, invalid UTF-8, control character)')
    .option('--allow-skipped', 'exit 0 even when serials were refused and skipped (default: exit status 2)');
  withKeyOptions(derive).action(async (serials: string[], o: Flags) => {
    const { runDerive } = await import('./derive.js');
    const { format, out, strict, keyOnly, allowSkipped, ...keyFlags } = o;
    const summary = await runDerive({
      serials, format: format as string, out: out as string | undefined, strict: strict === true, keyOnly: keyOnly === true,
      keyConfig: await keyConfig(keyFlags),
    });
    if (summary.skipped > 0 && allowSkipped !== true) process.exitCode = 2;
  });

  const hsm = cli.command('hsm').description('manage master keys on the PKCS#11 token (PIN from COAP_PSK_PIN_FILE / COAP_PSK_PIN)');
  const hsmCommand = (name: string) => withKeyOptions(hsm.command(name));
  hsm
    .command('init-dev')
    .description('create the development SoftHSM token in .dev/ (idempotent)')
    .action(async () => (await import('./hsm.js')).hsmInitDev());
  hsmCommand('import-key')
    .description('import a 16-byte master key (raw or 32 hex digits) from stdin or --file')
    .requiredOption('--label <label>', 'CKA_LABEL of the new key')
    .option('--file <file>', 'read the key from this file instead of stdin')
    .action(async ({ label, file, ...o }: Flags) => (await import('./hsm.js')).hsmImportKey({ label: label as string, file: file as string | undefined, keys: await keyConfig(o) }));
  hsmCommand('generate-key')
    .description('generate an AES-128 master key inside the token')
    .requiredOption('--label <label>', 'CKA_LABEL of the new key')
    .action(async ({ label, ...o }: Flags) => (await import('./hsm.js')).hsmGenerateKey({ label: label as string, keys: await keyConfig(o) }));
  hsmCommand('kcv')
    .description('print the key check value (first 3 bytes of AES(key, zero block)) of --label, default the newest configured master key')
    .option('--label <label>', 'CKA_LABEL of the key (default: the first of keys.keyLabels / COAP_PSK_KEY_LABEL)')
    .action(async ({ label, ...o }: Flags) => (await import('./hsm.js')).hsmKcv({ label: label as string | undefined, keys: await keyConfig(o) }));
  hsmCommand('check')
    .description('show token and key attributes, warn about weak ones, run a self-test derivation')
    .action(async (o: Flags) => {
      await (await import('./hsm.js')).hsmCheck({ keys: await keyConfig(o) });
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
