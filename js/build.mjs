// Build the widget bundle (default) or compile and run the JS unit tests (`--test`).
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "python", "headscope", "static");
const testSrc = join(root, "tests", "js");
const testOut = join(testSrc, ".build");
const MAX_BUNDLE = 150 * 1024;

async function buildBundle() {
  mkdirSync(outDir, { recursive: true });
  const common = { bundle: true, minify: true, target: "es2020", logLevel: "warning", legalComments: "none" };
  await esbuild.build({ ...common, entryPoints: [join(root, "js", "index.ts")], format: "esm", outfile: join(outDir, "widget.js") });
  await esbuild.build({ ...common, entryPoints: [join(root, "js", "styles.css")], outfile: join(outDir, "widget.css") });
  const size = statSync(join(outDir, "widget.js")).size;
  if (size > MAX_BUNDLE) throw new Error(`widget.js is ${size} bytes, over the ${MAX_BUNDLE}-byte budget`);
  console.log(`built widget.js (${size} bytes) and widget.css (${statSync(join(outDir, "widget.css")).size} bytes)`);
}

async function runTests() {
  const tests = readdirSync(testSrc).filter((f) => f.endsWith(".test.ts"));
  if (tests.length === 0) throw new Error(`no *.test.ts files in ${testSrc}`);
  rmSync(testOut, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: tests.map((f) => join(testSrc, f)),
    outdir: testOut,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  });
  const files = tests.map((f) => join(testOut, f.replace(/\.ts$/, ".mjs")));
  const result = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
  process.exitCode = result.status ?? 1;
}

await (process.argv.includes("--test") ? runTests() : buildBundle());
