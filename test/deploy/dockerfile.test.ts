/**
 * The Dockerfile, linted with dockerfile-utils (the validator of the Docker language server used
 * by editors: instructions, arguments, flags, JSON forms, stages), every rule at error level,
 * plus the project's own rules for the image. No container engine runs on these machines, so
 * the image itself is not built here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';

const DOCKERFILE = readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');

const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

const lint = (text: string) => validate(text, STRICT).map((d) => `${d.range.start.line + 1}: ${d.message}`);

/** The instructions of the last stage (what the image runs), one logical line each. */
function finalStage(text: string): string[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const from = lines.map((l, i) => (/^FROM /i.test(l) ? i : -1)).filter((i) => i >= 0).pop()!;
  return lines.slice(from);
}

describe('Dockerfile', () => {
  it('passes the linter with every rule at error level', () => {
    expect(lint(DOCKERFILE)).toEqual([]);
  });

  it('runs as an unprivileged numeric user on Node 24, with coap-psk serve as its command', () => {
    const stage = finalStage(DOCKERFILE);
    expect(DOCKERFILE).toMatch(/^ARG NODE_IMAGE=node:24-[a-z]+-slim$/m);
    const user = stage.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/); // numeric: runAsNonRoot can check it
    expect(stage).toContain('ENTRYPOINT ["node", "bin/coap-psk.js"]');
    expect(stage).toContain('CMD ["serve"]');
    expect(stage.some((l) => /\bCOAP_PSK_PIN=|SOFTHSM2_CONF=/.test(l))).toBe(false); // no secret or token baked in
  });

  it('the linter reports a broken Dockerfile (so that the check above can fail)', () => {
    const broken = DOCKERFILE.replace('WORKDIR /app', 'workdir app').replace('CMD ["serve"]', "CMD ['serve']");
    expect(lint(broken).join('\n')).toMatch(/uppercase|relative|JSON|single quotes/i);
    expect(lint('FROM node:24-slim\nCOPY\n').length).toBeGreaterThan(0);
  });
});
