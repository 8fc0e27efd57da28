/**
 * Key files, the same as the node's and the Python client's:
 * `{"type": "ed25519", "public_key": hex, "private_key": hex seed}`, written
 * readable by its owner only. Node.js only (the rest of the client runs
 * wherever `fetch` does).
 */

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import { InputError } from "./errors.js";
import { bytesEqual, fromHex, toHex } from "./hex.js";
import { Key } from "./keys.js";

const KEY_FILE_BYTES_MAX = 4096;

export async function loadKey(file: string): Promise<Key> {
  let text: string;
  try {
    const handle = await fs.open(file, "r");
    try {
      const buffer = Buffer.alloc(KEY_FILE_BYTES_MAX + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > KEY_FILE_BYTES_MAX) throw new InputError(`key file ${file} is too large to be a key file`);
      text = buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`cannot read key file ${file}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new InputError(`key file ${file} is not JSON`);
  }
  const keys = typeof document === "object" && document !== null ? Object.keys(document).sort().join(",") : "";
  if (keys !== "private_key,public_key,type") {
    throw new InputError(`key file ${file} must be an object with keys type, public_key, private_key`);
  }
  const doc = document as Record<string, unknown>;
  if (doc.type !== "ed25519") throw new InputError(`key file ${file}: type must be "ed25519"`);
  if (typeof doc.private_key !== "string" || typeof doc.public_key !== "string") {
    throw new InputError(`key file ${file}: public_key and private_key must be hex strings`);
  }
  const key = new Key(fromHex(doc.private_key, 32, `key file ${file}: private_key`));
  if (!bytesEqual(fromHex(doc.public_key, 32, `key file ${file}: public_key`), key.publicKey)) {
    throw new InputError(`key file ${file}: public_key does not match private_key`);
  }
  return key;
}

/** Write atomically, mode 0600 from the first byte; refuses to replace a key unless `overwrite`. */
export async function saveKey(key: Key, file: string, { overwrite = false } = {}): Promise<void> {
  const document = { type: "ed25519", public_key: key.address, private_key: toHex(key.seed) };
  const data = JSON.stringify(document, null, 2) + "\n";
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}`);
  const handle = await fs.open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (overwrite) await fs.rename(temporary, file);
    else {
      // link() fails if `file` exists: no window in which another key is replaced.
      await fs.link(temporary, file).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "EEXIST") throw new InputError(`${file} already exists; refusing to overwrite a key`);
        throw error;
      });
      await fs.unlink(temporary);
    }
  } catch (error) {
    await fs.unlink(temporary).catch(() => undefined);
    throw error;
  }
}
