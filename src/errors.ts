/**
 * An error whose message is meant for the person at the terminal: one line, no stack.
 * The CLI prints `coap-psk: <message>` and exits 1. Messages never carry secrets
 * (PIN, key bytes): they name the setting or the object, not its value.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(message: string, options?: { cause?: unknown }) {
    // A multi-line message would break the "one line" promise of the CLI.
    super(message.replace(/\s*\n\s*/g, ' '), options);
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
