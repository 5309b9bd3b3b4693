// Web Crypto: a global in browsers and Node >= 19; Node 18 has it only as
// `webcrypto` of node:crypto.

let found: Promise<Crypto> | undefined;

export function webCrypto(): Promise<Crypto> {
  found ??= (async () => {
    if (globalThis.crypto?.subtle !== undefined) return globalThis.crypto;
    // A specifier in a variable, so that bundlers for browsers leave it alone.
    const specifier = "node:crypto";
    const module = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as { webcrypto: Crypto };
    return module.webcrypto;
  })();
  return found;
}
