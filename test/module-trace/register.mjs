// `node --import ./test/module-trace/register.mjs PROGRAM`: appends the URL of every module PROGRAM loads,
// one a line, to the file named by LASP_MODULE_TRACE (test/cli-startup.test.ts).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url, { data: { file: process.env.LASP_MODULE_TRACE } });
