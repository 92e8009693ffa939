#!/usr/bin/env -S bun
/**
 * The `zonetree` command line (API.md §8): `inspect`, `get`, `scan`, `verify`, `compact` and
 * `demo`. Runs as `bun cli.ts <command>`, `deno run -A cli.ts <command>`, or `npx zonetree` /
 * `bunx zonetree` through `bin/zonetree.js`. `zonetree --help` lists the commands and exit codes.
 *
 * The commands live in `src/cli/`; this file only runs them with the process's arguments and
 * streams, and sets the exit code once every line was written.
 *
 * @module
 */
import process from "node:process";
import { processContext } from "./src/cli/common.ts";
import { runCli } from "./src/cli/main.ts";

process.exitCode = await runCli(process.argv.slice(2), processContext());
