#!/usr/bin/env node
// Entry point of the `lasp` command. The compiler is written in TypeScript and built into dist/ by
// `npm install` (the `prepare` script); this file only forwards to it.
import { main } from "../dist/src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
