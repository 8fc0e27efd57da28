/**
 * Send a transaction to a devnet, wait for it final, and prove it and its
 * namespace with genesis.json alone.
 *
 *     node dist/examples/quickstart.js [DEVNET_HOME] [RPC_URL]
 *
 * DEVNET_HOME is the devnet's directory (default ../../.devnet: the one
 * `python3 scripts/devnet.py` runs); RPC_URL defaults to node 0's URL from
 * its genesis.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { Client, LightClient, SequencerError, Wallet, loadKey, parseGenesis, parseJson, toHex, utf8 } from "../src/index.js";

async function main(home: string, rpc?: string): Promise<void> {
  const file = join(home, "node0", "genesis.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new SequencerError(`no devnet at ${home} (no ${file}): start one with python3 scripts/devnet.py`);
  }
  const genesis = parseGenesis(parseJson(text));
  const url = rpc ?? genesis.validators[0]!.rpc;
  const wallet = new Wallet(await loadKey(join(home, "wallet.json")), genesis.chain_id);
  const client = new Client(url);

  const id = await client.send(wallet, utf8("hello from TypeScript"), { gasPrice: 10n, namespace: 7n });
  console.log(`sent       ${toHex(id)}`);
  const status = await client.waitFinal(id);
  console.log(`committed  height ${status.height} index ${status.index}`);

  const light = new LightClient(url, genesis);
  const { block } = await light.tx(id);
  const signers = block.certificate.signatures.map(([index]) => index).join(",");
  console.log(`proven     block ${toHex(block.blockId)} signed by validators ${signers}`);
  const part = await light.namespace(7n, block.height);
  console.log(`namespace  7 at height ${block.height}: ${part.txs.length} transaction(s), all of them, proven`);
}

const [home = join(import.meta.dirname ?? ".", "..", "..", "..", "..", ".devnet"), rpc] = process.argv.slice(2);
main(home, rpc).catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
