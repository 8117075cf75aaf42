/**
 * Thin, shared access to a PKCS#11 module through pkcs11js.
 *
 * A module may be C_Initialize'd only once per process, while several users (the resolver,
 * `hsm check`, tests) may want it at the same time; so modules are shared per path and
 * finalized when the last user releases them. Every error that leaves this file as a
 * UserError is one line naming the object, never a secret.
 */
import pkcs11js from 'pkcs11js';
import { UserError } from '../errors.js';

export type Handle = Buffer;
export type PKCS11 = InstanceType<typeof pkcs11js.PKCS11>;
export const P11 = pkcs11js;

interface SharedModule {
  p11: PKCS11;
  refs: number;
  /** false when someone else in this process initialized the module: then we never finalize it. */
  ownsInit: boolean;
}

const modules = new Map<string, SharedModule>();

/** The PKCS#11 return code of an error from pkcs11js, or undefined. `.method` is unreliable. */
export function ckrCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' && code !== 0 ? code : undefined;
}

const ckrNames = new Map<number, string>();
for (const [k, v] of Object.entries(pkcs11js)) {
  if (k.startsWith('CKR_') && typeof v === 'number' && !ckrNames.has(v)) ckrNames.set(v, k);
}
export function ckrName(code: number | undefined): string {
  if (code === undefined) return 'unknown error';
  return ckrNames.get(code) ?? `CKR 0x${code.toString(16)}`;
}

/** Return codes after which a fresh session and login may succeed (token re-inserted, HSM restarted). */
export const RECOVERABLE = new Set<number>([
  P11.CKR_SESSION_HANDLE_INVALID,
  P11.CKR_SESSION_CLOSED,
  P11.CKR_USER_NOT_LOGGED_IN,
  P11.CKR_DEVICE_REMOVED,
  P11.CKR_DEVICE_ERROR,
  P11.CKR_TOKEN_NOT_PRESENT,
  P11.CKR_TOKEN_NOT_RECOGNIZED,
  P11.CKR_KEY_HANDLE_INVALID,
  P11.CKR_OBJECT_HANDLE_INVALID,
  P11.CKR_CRYPTOKI_NOT_INITIALIZED,
  P11.CKR_SESSION_COUNT,
  P11.CKR_OPERATION_ACTIVE,
]);

export function acquireModule(path: string): PKCS11 {
  const shared = modules.get(path);
  if (shared) {
    shared.refs++;
    return shared.p11;
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
  } catch (e) {
    throw new UserError(`PKCS#11 module could not be loaded: ${path}`, { cause: e });
  }
  let ownsInit = true;
  try {
    // Without OS locking SoftHSM runs lock-free and concurrent async calls corrupt it.
    p11.C_Initialize({ flags: P11.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrCode(e) === P11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ownsInit = false;
    } else {
      safely(() => p11.close());
      throw new UserError(`PKCS#11 module could not be initialized: ${path} (${ckrName(ckrCode(e))})`, { cause: e });
    }
  }
  modules.set(path, { p11, refs: 1, ownsInit });
  return p11;
}

export function releaseModule(path: string): void {
  const shared = modules.get(path);
  if (!shared) return;
  if (--shared.refs > 0) return;
  modules.delete(path);
  if (shared.ownsInit) safely(() => shared.p11.C_Finalize());
  safely(() => shared.p11.close());
}

/**
 * Re-initializes a module after CKR_CRYPTOKI_NOT_INITIALIZED or a removed device: all users
 * of the module share the new state, their old sessions are gone anyway.
 */
export function reinitializeModule(path: string): void {
  const shared = modules.get(path);
  if (!shared) return;
  safely(() => shared.p11.C_Finalize());
  try {
    shared.p11.C_Initialize({ flags: P11.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrCode(e) !== P11.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw e;
  }
}

export function safely(fn: () => unknown): void {
  try {
    fn();
  } catch {
    /* best effort: cleanup must not hide the error that led here */
  }
}

export function tokenLabelOf(p11: PKCS11, slot: Handle): string {
  return p11.C_GetTokenInfo(slot).label.replace(/[\s\0]+$/, '');
}

/** Slots are chosen by token label: slot indexes change when tokens are added. */
export function findSlotByLabel(p11: PKCS11, label: string): Handle | undefined {
  for (const slot of p11.C_GetSlotList(true)) {
    try {
      if (tokenLabelOf(p11, slot) === label) return slot;
    } catch {
      /* a slot whose token vanished in between */
    }
  }
  return undefined;
}

export function requireSlot(p11: PKCS11, label: string): Handle {
  const slot = findSlotByLabel(p11, label);
  if (!slot) throw new UserError(`PKCS#11 token not found: label ${label}`);
  return slot;
}

export function openSession(p11: PKCS11, slot: Handle, readWrite = false): Handle {
  const flags = P11.CKF_SERIAL_SESSION | (readWrite ? P11.CKF_RW_SESSION : 0);
  return p11.C_OpenSession(slot, flags);
}

/** Logs the user in. Login state is per token and application, so "already logged in" is success. */
export function login(p11: PKCS11, session: Handle, pin: Buffer | string): void {
  try {
    p11.C_Login(session, P11.CKU_USER, typeof pin === 'string' ? pin : pin.toString('utf8'));
  } catch (e) {
    const code = ckrCode(e);
    if (code === P11.CKR_USER_ALREADY_LOGGED_IN) return;
    if (code === P11.CKR_PIN_INCORRECT) throw new UserError('PKCS#11 login failed: PIN incorrect');
    if (code === P11.CKR_PIN_LOCKED) throw new UserError('PKCS#11 login failed: PIN locked');
    if (code === P11.CKR_PIN_EXPIRED) throw new UserError('PKCS#11 login failed: PIN expired');
    if (code === P11.CKR_USER_PIN_NOT_INITIALIZED) throw new UserError('PKCS#11 login failed: user PIN not initialized');
    throw e;
  }
}

export function findSecretKeys(p11: PKCS11, session: Handle, label: string): Handle[] {
  p11.C_FindObjectsInit(session, [
    { type: P11.CKA_CLASS, value: P11.CKO_SECRET_KEY },
    { type: P11.CKA_LABEL, value: label },
  ]);
  try {
    return p11.C_FindObjects(session, 2);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

export function findSecretKey(p11: PKCS11, session: Handle, label: string): Handle | undefined {
  return findSecretKeys(p11, session, label)[0];
}

export const CBC_ZERO_IV = (): { mechanism: number; parameter: Buffer } => ({
  mechanism: P11.CKM_AES_CBC,
  parameter: Buffer.alloc(16),
});

/** One AES-CBC block with a zero IV, synchronously: the derivation's HSM half. */
export function encryptBlockSync(p11: PKCS11, session: Handle, key: Handle, block: Buffer, out = Buffer.alloc(16)): Buffer {
  p11.C_EncryptInit(session, CBC_ZERO_IV(), key);
  return p11.C_Encrypt(session, block, out);
}
