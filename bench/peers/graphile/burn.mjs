// graphile-worker burn-down for bench/peers (run with `node`, from the bench cache dir that
// holds node_modules/graphile-worker; see bench/peers/__init__.py).
//
// Parent (default role): migrates the graphile_worker schema into DATABASE_URL, enqueues JOBS
// no-op jobs with addJobs, starts PROCESSES worker processes (this file, BURN_ROLE=worker),
// waits until each has loaded its modules, then says "go" and times until
// graphile_worker._private_jobs is empty (completed jobs are deleted), polling every 100 ms.
// Prints `<FIGURE> <jobs/s> jobs/s` on stdout; diagnostics go to stderr prefixed with '#'.
//
// Env: DATABASE_URL, JOBS (20000), PROCESSES (4), CONCURRENCY (24), MAX_POOL_SIZE (25),
// LOCAL_QUEUE (0/1), LOCAL_QUEUE_SIZE (500), FIGURE, TIMEOUT_S (300).
// The defaults follow graphile-worker's own performance test (website/docs/performance.md):
// 4 processes x concurrentJobs 24, maxPoolSize 25; batching adds localQueue.size 500 and
// completeJobBatchDelay = failJobBatchDelay = 0.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";

const env = process.env;
const DATABASE_URL = env.DATABASE_URL;
const JOBS = Number(env.JOBS ?? 20000);
const PROCESSES = Number(env.PROCESSES ?? 4);
const CONCURRENCY = Number(env.CONCURRENCY ?? 24);
const MAX_POOL_SIZE = Number(env.MAX_POOL_SIZE ?? CONCURRENCY + 1);
const LOCAL_QUEUE = env.LOCAL_QUEUE === "1";
const LOCAL_QUEUE_SIZE = Number(env.LOCAL_QUEUE_SIZE ?? 500);
const TIMEOUT_MS = Number(env.TIMEOUT_S ?? 300) * 1000;
const FIGURE =
  env.FIGURE ??
  (LOCAL_QUEUE
    ? "peer_graphile_worker_local_queue_jobs_per_s"
    : "peer_graphile_worker_jobs_per_s");
const ENQUEUE_BATCH = 10000;
const POLL_MS = 100;

// Warnings and errors only: per-job info lines would cost more than the no-op jobs.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`# graphile ${level}: ${message}\n`);
  }
});

function workerPreset() {
  const worker = {
    connectionString: DATABASE_URL,
    concurrentJobs: CONCURRENCY,
    maxPoolSize: MAX_POOL_SIZE,
  };
  if (LOCAL_QUEUE) {
    worker.localQueue = { size: LOCAL_QUEUE_SIZE };
    worker.completeJobBatchDelay = 0;
    worker.failJobBatchDelay = 0;
  }
  return { worker };
}

async function workerMain() {
  const lines = createInterface({ input: process.stdin });
  let runner = null;
  process.stdout.write("ready\n");
  for await (const line of lines) {
    if (line === "go" && runner === null) {
      runner = await run({
        logger,
        noHandleSignals: true,
        taskList: { noop: async () => {} },
        preset: workerPreset(),
      });
    } else if (line === "stop") {
      break;
    }
  }
  // stdin closed or "stop": shut down gracefully (flushes batched completions).
  if (runner !== null) await runner.stop();
  process.exit(0);
}

function startWorker() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    env: { ...env, BURN_ROLE: "worker" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const ready = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) =>
      line === "ready" ? resolve() : reject(new Error(`worker said ${line}`)),
    );
    child.on("exit", (code) => reject(new Error(`worker exited early (${code})`)));
  });
  return { child, exited, ready };
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function parentMain() {
  if (!DATABASE_URL) throw new Error("DATABASE_URL is required");
  await runMigrations({ connectionString: DATABASE_URL, logger });
  const utils = await makeWorkerUtils({ connectionString: DATABASE_URL, logger });
  const workers = [];
  try {
    const enqueueStart = performance.now();
    for (let offset = 0; offset < JOBS; offset += ENQUEUE_BATCH) {
      const n = Math.min(ENQUEUE_BATCH, JOBS - offset);
      await utils.addJobs(
        Array.from({ length: n }, (_, i) => ({ identifier: "noop", payload: { i: offset + i } })),
      );
    }
    const enqueueS = (performance.now() - enqueueStart) / 1000;
    process.stderr.write(`# ${FIGURE}: enqueued ${JOBS} jobs in ${enqueueS.toFixed(2)} s\n`);

    for (let i = 0; i < PROCESSES; i++) workers.push(startWorker());
    await withTimeout(Promise.all(workers.map((w) => w.ready)), 30000, "worker start");

    const start = performance.now();
    for (const w of workers) w.child.stdin.write("go\n");
    for (;;) {
      const {
        rows: [row],
      } = await utils.withPgClient((client) =>
        client.query(
          "select count(*)::int as left, count(last_error)::int as failed" +
            " from graphile_worker._private_jobs",
        ),
      );
      if (row.left === 0) break;
      if (row.failed > 0) throw new Error(`${row.failed} jobs failed`);
      if (performance.now() - start > TIMEOUT_MS) {
        throw new Error(`burn-down timed out with ${row.left} jobs left`);
      }
      await sleep(POLL_MS);
    }
    const elapsedS = (performance.now() - start) / 1000;
    process.stderr.write(
      `# ${FIGURE}: ${JOBS} jobs, ${PROCESSES} processes x concurrency ${CONCURRENCY}` +
        ` (pool ${MAX_POOL_SIZE}${LOCAL_QUEUE ? `, localQueue ${LOCAL_QUEUE_SIZE}, batch delay 0` : ""})` +
        ` in ${elapsedS.toFixed(2)} s\n`,
    );
    process.stdout.write(`${FIGURE} ${(JOBS / elapsedS).toFixed(1)} jobs/s\n`);
  } finally {
    for (const w of workers) w.child.stdin.end("stop\n");
    try {
      await withTimeout(Promise.all(workers.map((w) => w.exited)), 10000, "worker stop");
    } catch {
      for (const w of workers) w.child.kill("SIGKILL");
    }
    await utils.release();
  }
}

const main = env.BURN_ROLE === "worker" ? workerMain : parentMain;
main().catch((err) => {
  process.stderr.write(`# graphile burn failed: ${err?.message ?? err}\n`);
  process.exit(1);
});
