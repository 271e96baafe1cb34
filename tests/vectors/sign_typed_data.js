// Sign eth_signTypedData_v4 JSON text the way JavaScript wallets do: with ethers 6 and with
// MetaMask's eth-sig-util (both pinned in package.json). Input on stdin:
//   {"secret": "0x..", "typed_data": ["<json text>", ...]}
// Output on stdout: {"ethers": [{"digest", "signature"} | {"error"}], "eth_sig_util": [...]}
// The typed data is parsed from text, exactly as a wallet receives it over JSON-RPC.
'use strict';
const { Wallet, TypedDataEncoder } = require('ethers');
const { signTypedData, SignTypedDataVersion, TypedDataUtils } = require('@metamask/eth-sig-util');

async function withEthers(wallet, text) {
  const data = JSON.parse(text);
  const types = Object.assign({}, data.types);
  delete types.EIP712Domain; // ethers derives the domain type itself
  const digest = TypedDataEncoder.hash(data.domain, types, data.message);
  const signature = await wallet.signTypedData(data.domain, types, data.message);
  return { digest, signature };
}

function withSigUtil(secret, text) {
  const data = JSON.parse(text);
  const digest = '0x' + TypedDataUtils.eip712Hash(data, SignTypedDataVersion.V4).toString('hex');
  const signature = signTypedData({ privateKey: secret, data, version: SignTypedDataVersion.V4 });
  return { digest, signature };
}

async function guarded(fn) {
  try {
    return await fn();
  } catch (err) {
    return { error: String(err && err.message ? err.message : err).slice(0, 300) };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const wallet = new Wallet(input.secret);
  const secret = Buffer.from(input.secret.slice(2), 'hex');
  const out = { ethers: [], eth_sig_util: [] };
  for (const text of input.typed_data) {
    out.ethers.push(await guarded(() => withEthers(wallet, text)));
    out.eth_sig_util.push(await guarded(() => withSigUtil(secret, text)));
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exitCode = 1;
});
