// A real `hydracore serve --demo` on SQLite, on a free loopback port;
// HYDRACORE_BIN names the binary (default: the debug build under
// CARGO_TARGET_DIR or target/).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

function binary() {
  if (process.env.HYDRACORE_BIN) return process.env.HYDRACORE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, "target");
  const path = join(target, "debug", "hydracore");
  if (!existsSync(path)) throw new Error(`no server binary at ${path}: run \`cargo build -p hydracore\` or set HYDRACORE_BIN`);
  return path;
}

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "hydracore-ts-"));
  const child = spawn(binary(), ["--json", "serve", "--demo", "--listen", "127.0.0.1:0"], {
    env: {
      ...process.env,
      HYDRACORE_DATABASE_URL: `sqlite:${dir}/hydracore.db`,
      // Webhooks to the tests' receivers on loopback, over http.
      HYDRACORE_WEBHOOK_ALLOW_PRIVATE: "true",
      HYDRACORE_WEBHOOK_POLL_INTERVAL: "200ms",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const first = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("no demo credentials within 60 s")), 60_000);
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      ok(line);
    });
    child.once("exit", (code) => fail(new Error(`the server exited (${code})`)));
  });
  const demo = JSON.parse(first);
  return {
    url: demo.base_url,
    demo,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
