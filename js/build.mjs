// Build the widget bundle (default) or compile and run the JS unit tests (`--test`).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
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
  await buildExport(common);
}

// The offline HTML export's script: the same widget, as one classic script (an IIFE) that
// headscope._export inlines into a <script> element, with the widget's CSS in a <style>.
async function buildExport(common) {
  const out = join(outDir, "export.js");
  await esbuild.build({ ...common, entryPoints: [join(root, "js", "export", "boot.ts")], format: "iife", outfile: out });
  const text = readFileSync(out, "utf8");
  checkInlinable("export.js", text, /<\/script|<!--/i);
  checkInlinable("widget.css", readFileSync(join(outDir, "widget.css"), "utf8"), /<\/style|<!--/i);
  const size = statSync(out).size;
  if (size > MAX_BUNDLE) throw new Error(`export.js is ${size} bytes, over the ${MAX_BUNDLE}-byte budget`);
  console.log(`built export.js (${size} bytes)`);
}

/** Text inlined into an HTML element must not end it early or open an HTML comment there. */
function checkInlinable(name, text, forbidden) {
  const hit = forbidden.exec(text);
  if (hit) throw new Error(`${name} contains ${JSON.stringify(hit[0])} at ${hit.index}: it cannot be inlined into the HTML export`);
  if (/[^\x00-\x7f]/.test(text)) throw new Error(`${name} is not ASCII: the HTML export inlines it as ASCII`);
}

// The JupyterLab extension's source (src/) as one ES module for `jupyter labextension build`:
// the registry from js/ is bundled in; @jupyterlab and @lumino stay imports, shared with Lab.
async function buildLabLib() {
  await esbuild.build({
    entryPoints: [join(root, "src", "index.ts")],
    outfile: join(root, "lib", "index.js"),
    bundle: true,
    format: "esm",
    target: "es2020",
    packages: "external",
    logLevel: "warning",
  });
  console.log(`built lib/index.js (${statSync(join(root, "lib", "index.js")).size} bytes)`);
}

/**
 * The Python that runs `jupyter` (in an isolated pip build, the build environment's, named by the
 * script's first line), else python3: it knows where JupyterLab's core package (staging) is.
 */
function jupyterPython() {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const script = join(dir, "jupyter");
    if (!existsSync(script)) continue;
    const first = readFileSync(script, "utf8").split("\n", 1)[0];
    if (first.startsWith("#!") && !first.includes(" ")) return first.slice(2).trim();
    break;
  }
  return "python3";
}

// The prebuilt extension (python/headscope/labextension) with @jupyterlab/builder's webpack,
// against the core package of the JupyterLab the build runs with; shared versions come from
// package.json's ranges, so the result loads on every JupyterLab 4 from the lowest stated there.
function buildLabExtension() {
  const python = jupyterPython();
  const core = spawnSync(python, ["-c", "import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), 'staging'))"], { encoding: "utf8" });
  if (core.status !== 0) throw new Error(`cannot find JupyterLab's core package with ${python}: ${core.stderr}`);
  const bin = join(root, "node_modules", "@jupyterlab", "builder", "lib", "build-labextension.js");
  const result = spawnSync(process.execPath, [bin, "--core-path", core.stdout.trim(), root], { stdio: "inherit" });
  if (result.status !== 0) throw new Error("build-labextension failed");
  const out = join(root, "python", "headscope", "labextension", "static");
  const bytes = readdirSync(out).filter((f) => f.endsWith(".js")).reduce((n, f) => n + statSync(join(out, f)).size, 0);
  console.log(`built the JupyterLab extension (${bytes} bytes of JS in labextension/static)`);
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

await (process.argv.includes("--test") ? runTests() : process.argv.includes("--lab") ? buildLabLib().then(buildLabExtension) : buildBundle());
